#!/bin/sh
# The switch's container entry (docker/Dockerfile). `run`: rufweiche run with the image's
# settings on the container's own address, advertising RUFWEICHE_ADVERTISE (host:port of
# the Docker host as phones and trunks reach it) when it is set. Anything else: rufweiche.
set -eu
if [ "${1:-}" != run ]; then
    exec rufweiche "$@"
fi
shift
settings=${RUFWEICHE_SETTINGS:-/etc/rufweiche/settings.yaml}
data=${RUFWEICHE_DATA:-/var/lib/rufweiche}
ip=${RUFWEICHE_IP:-$(hostname -i | cut -d' ' -f1)}
if [ -n "${RUFWEICHE_ADVERTISE:-}" ]; then
    # edge: is the last block of the image's settings: one more key of it
    cp "$settings" "$data/settings.yaml"
    printf '  advertise: "%s"\n' "$RUFWEICHE_ADVERTISE" >> "$data/settings.yaml"
    settings=$data/settings.yaml
fi
exec rufweiche run --settings "$settings" --sip "$ip:5060" "$@"
