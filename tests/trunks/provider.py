# ruff: noqa: E501
"""A fake SIP trunk provider for the trunk tests: Kamailio in its own network namespace.

It does what the real ones do to a PBX (../shared/TRUNKS.md §1): digest auth on REGISTER
(``Min-Expires`` with 423 when the PBX asks for too little), 407 on every INVITE from the
PBX, the identity checks of the profile (sipgate: From = SIP-ID, PPI ``49…`` without plus,
the presented number from the customer's block unless CLIP no screening is booked — else
403), and calls for the customer's numbers delivered to the registered contact with the
Request-URI user in ``49…`` format (easybell/sipgate style).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CONFIG = r"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
dns=no
rev_dns=no
listen=udp:{address}:5060
alias={address}
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "maxfwd.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", {min_expires})
modparam("registrar", "max_expires", 3600)
modparam("auth", "nonce_expire", 300)

request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (has_totag()) {{
		if (loose_route() || is_method("ACK|BYE")) {{ t_relay(); exit; }}
		sl_send_reply("404", "Not here"); exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
	if (is_method("REGISTER")) {{
		xlog("L_NOTICE", "provider: REGISTER from $si user $tU authuser $au expires $hdr(Expires) seclient $hdr(Security-Client)\n");
		if (!pv_www_authenticate("{realm}", "{password}", "0")) {{
			if ($au != $null) xlog("L_NOTICE", "provider: REGISTER auth FAILED for $au\n");
			www_challenge("{realm}", "0");
			exit;
		}}
		if ($tU != "{user}") {{ sl_send_reply("403", "Unknown account"); exit; }}
		if ($hdr(Expires) != $null && $(hdr(Expires){{s.int}}) > 0 && $(hdr(Expires){{s.int}}) < {min_expires}) {{
			append_to_reply("Min-Expires: {min_expires}\r\n");
			sl_send_reply("423", "Interval Too Brief");
			exit;
		}}
		if (!save("location")) sl_reply_error();
		xlog("L_NOTICE", "provider: REGISTERED $tU contact $ct expires $hdr(Expires)\n");
		exit;
	}}
	if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
	if (!is_method("INVITE")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
	if ($si == "{pbx}") {{
		if (!pv_proxy_authenticate("{realm}", "{password}", "0")) {{
			xlog("L_NOTICE", "provider: 407 to INVITE $rU from $si cseq $cs\n");
			proxy_challenge("{realm}", "0");
			exit;
		}}
		consume_credentials();
		xlog("L_NOTICE", "provider: INVITE $rU authenticated cseq $cs; From $fu PPI $hdr(P-Preferred-Identity) PAI $hdr(P-Asserted-Identity) Diversion $hdr(Diversion)\n");
		if ($fU != "{from_user}") {{ sl_send_reply("403", "From must carry the SIP-ID"); exit; }}
		if (!is_present_hf("P-Preferred-Identity")) {{ sl_send_reply("403", "No PPI"); exit; }}
		$var(ppi) = $(hdr(P-Preferred-Identity){{nameaddr.uri}}{{uri.user}});
		if (!($var(ppi) =~ "^49[0-9]+$")) {{ sl_send_reply("403", "Faulty format"); exit; }}
		if ({clip} == 0 && !($var(ppi) =~ "^{block}$")) {{
			sl_send_reply("403", "Presented number not allowed");
			exit;
		}}
		record_route();
		$du = "sip:{mobile}";
		t_relay();
		exit;
	}}
	# A customer calls one of the PBX's numbers: to the registered contact, R-URI 49...
	$var(did) = $rU;
	if (!lookup("location", "sip:{user}@{address}")) {{
		xlog("L_NOTICE", "provider: customer call to $rU but the PBX is not registered\n");
		sl_send_reply("480", "PBX not registered");
		exit;
	}}
	$rU = $var(did);
	xlog("L_NOTICE", "provider: customer call delivered to $ru\n");
	record_route();
	t_relay();
}}
"""


@dataclass
class ProviderConfig:
    address: str  # the provider's SBC/registrar
    pbx: str  # the switch's address: INVITEs from there are challenged
    mobile: str  # host:port of the "mobile network" (a SIPp UAS)
    user: str = "1234567t0"  # the SIP-ID (sipgate style)
    password: str = "geheim-42"
    realm: str = "provider.test"
    block: str = "4923319876540"  # the customer's number (regex, 49... format)
    clip: bool = False  # CLIP no screening booked
    min_expires: int = 15

    def render(self) -> str:
        return CONFIG.format(
            address=self.address,
            pbx=self.pbx,
            mobile=self.mobile,
            user=self.user,
            password=self.password,
            realm=self.realm,
            block=self.block,
            clip=1 if self.clip else 0,
            min_expires=self.min_expires,
            from_user=self.user,
        )


class Provider:
    """The provider's Kamailio in namespace ``ns``; ``restart`` loses every registration."""

    def __init__(self, ns: str, work: Path, config: ProviderConfig) -> None:
        self.ns, self.work, self.config = ns, work, config
        self.cfg = work / "provider.cfg"
        self.log = work / "provider.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> Provider:
        self.cfg.write_text(self.config.render(), encoding="utf-8")
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(self.cfg)], capture_output=True, text=True, timeout=20
        )
        assert check.returncode == 0, check.stderr[-3000:]
        self.runs += 1
        with self.log.open("ab") as out:
            self.proc = self._spawn(out)
        time.sleep(0.5)
        assert self.proc.poll() is None, self.text()[-3000:]
        return self

    def _spawn(self, out: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "kamailio", "-DD", "-E", "-f", str(self.cfg),
             "-P", str(self.work / f"provider{self.runs}.pid"), "-w", str(self.work)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def count(self, needle: str) -> int:
        return self.text().count(needle)
