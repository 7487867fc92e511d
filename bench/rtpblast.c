/* rtpblast: the RTP side of bench/rtpload.py's generator, in C (issue 16, "Concurrency").
 *
 * The Python generator keeps the SIP dialogs and opens one RTP socket per call side; it
 * hands each socket to this process over a Unix socketpair (SCM_RIGHTS) and tells it
 * where the side sends. Every 20 ms one tick sends one packet per sending side; every
 * packet received is timed against the send time it carries. The wire format and the
 * figures are those of the Python sender (bench/rtpload.py: RTP header, then
 * "RWB1", direction, sender id, sequence, send time in ns, padded to 160 bytes), so
 * that the two engines can be compared in one run. One thread, one epoll, a timerfd for
 * the ticks: at 500 calls (50,000 packets/s each way) the Python loop needed most of a
 * core, which the switch under test needs.
 *
 * Commands (one datagram each, text; "leg" carries the socket):
 *   leg IDENT DIR RTP   a side (DIR 0 caller->callee, 1 back; RTP 0: sends nothing)
 *   dest IDENT IP PORT  where it sends        nodest IDENT    it stops sending
 *   drop IDENT          the side is gone (the socket is closed here too)
 *   start / stop        the measuring window (packets sent inside it count)
 *   report PATH         write the figures as JSON to PATH, then answer "ok"
 *   quit
 * Build: cc -O2 -o rtpblast rtpblast.c (bench/rtpload.py does it on first use).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PTIME_NS 20000000LL
#define PAYLOAD_LEN 160
#define BIN_US 10
#define BINS 100000
#define CTL_KEY 0xFFFFFFFFu
#define TICK_KEY 0xFFFFFFFEu

struct leg {
    int fd, dir, rtp, has_dest, used;
    uint32_t seq;
    struct sockaddr_in dest;
    uint64_t sent, received; /* inside the window, by this side as the sender */
};

struct way {
    uint64_t sent, received, late;
    double maximum_s;
    uint32_t *hist;
};

static struct leg *legs;
static uint32_t nlegs; /* capacity, indexed by ident */
static uint32_t *active; /* idents of live legs, for the tick */
static uint32_t nactive;
static struct way ways[2];
static int64_t w0 = INT64_MAX, w1 = INT64_MAX; /* window, CLOCK_REALTIME ns */
static double *lateness;
static size_t nlate, caplate;

static int64_t now_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct leg *leg_at(uint32_t ident) {
    if (ident >= nlegs) {
        uint32_t n = nlegs ? nlegs : 1024;
        while (n <= ident) n *= 2;
        legs = realloc(legs, n * sizeof *legs);
        active = realloc(active, n * sizeof *active);
        if (!legs || !active) { perror("rtpblast: realloc"); exit(2); }
        memset(legs + nlegs, 0, (n - nlegs) * sizeof *legs);
        nlegs = n;
    }
    return &legs[ident];
}

static void put_be32(unsigned char *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
static uint32_t get_be32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }

static void tick(void) {
    unsigned char pkt[12 + PAYLOAD_LEN];
    memset(pkt, 0xff, sizeof pkt);
    pkt[0] = 0x80;
    pkt[1] = 0;
    memcpy(pkt + 12, "RWB1", 4);
    for (uint32_t i = 0; i < nactive; i++) {
        uint32_t id = active[i];
        struct leg *l = &legs[id];
        if (!l->has_dest || !l->rtp) continue;
        l->seq++;
        uint16_t s16 = htons((uint16_t)l->seq);
        memcpy(pkt + 2, &s16, 2);
        put_be32(pkt + 4, l->seq * 160u);
        put_be32(pkt + 8, id);
        pkt[16] = (unsigned char)l->dir;
        put_be32(pkt + 17, id);
        put_be32(pkt + 21, l->seq);
        int64_t ns = now_ns(CLOCK_REALTIME);
        put_be32(pkt + 25, (uint32_t)((uint64_t)ns >> 32));
        put_be32(pkt + 29, (uint32_t)ns);
        if (sendto(l->fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&l->dest,
                   sizeof l->dest) < 0)
            continue;
        if (w0 <= ns && ns < w1) {
            ways[l->dir].sent++;
            l->sent++;
        }
    }
}

static void receive(int fd) {
    unsigned char buf[2048];
    char ctl[CMSG_SPACE(sizeof(struct timespec))];
    for (;;) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {0};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
        ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
        if (n < 0) return; /* EAGAIN, or the socket went away */
        if (n < 12 + 21 || memcmp(buf + 12, "RWB1", 4) != 0) continue; /* RTCP, silence */
        int64_t t = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        }
        if (t < 0) t = now_ns(CLOCK_REALTIME);
        int dir = buf[16] & 1;
        uint32_t sender = get_be32(buf + 17);
        int64_t sent = ((int64_t)get_be32(buf + 25) << 32) | get_be32(buf + 29);
        if (sender >= nlegs || !(w0 <= sent && sent < w1)) continue; /* not one of ours */
        struct way *w = &ways[dir];
        legs[sender].received++;
        w->received++;
        double d = (double)(t - sent) / 1e9;
        if (d > w->maximum_s) w->maximum_s = d;
        int64_t bin = (t - sent) / 1000 / BIN_US;
        if (bin < 0) bin = 0; /* clock granularity: a negative delay is ~0 */
        if (bin < BINS) w->hist[bin]++;
        else w->late++;
    }
}

static void drop(int ep, uint32_t id) {
    if (id >= nlegs || !legs[id].used) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, legs[id].fd, NULL);
    close(legs[id].fd);
    legs[id].used = 0;
    legs[id].has_dest = 0;
    for (uint32_t i = 0; i < nactive; i++)
        if (active[i] == id) { active[i] = active[--nactive]; break; }
}

static int report(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"ways\": [");
    for (int d = 0; d < 2; d++) {
        struct way *w = &ways[d];
        fprintf(f, "%s{\"sent\": %llu, \"received\": %llu, \"late\": %llu, \"maximum\": %.9f, "
                   "\"hist\": [", d ? ", " : "", (unsigned long long)w->sent,
                (unsigned long long)w->received, (unsigned long long)w->late, w->maximum_s);
        int first = 1;
        for (int i = 0; i < BINS; i++)
            if (w->hist[i]) {
                fprintf(f, "%s[%d, %u]", first ? "" : ", ", i, w->hist[i]);
                first = 0;
            }
        fprintf(f, "], \"senders\": {");
        first = 1;
        for (uint32_t id = 0; id < nlegs; id++) {
            struct leg *l = &legs[id];
            if (l->dir != d || (!l->sent && !l->received)) continue;
            fprintf(f, "%s\"%u\": [%llu, %llu]", first ? "" : ", ", id,
                    (unsigned long long)l->sent, (unsigned long long)l->received);
            first = 0;
        }
        fprintf(f, "}}");
    }
    fprintf(f, "], \"lateness\": [");
    for (size_t i = 0; i < nlate; i++) fprintf(f, "%s%.6f", i ? ", " : "", lateness[i]);
    fprintf(f, "]}\n");
    return fclose(f);
}

/* One command; returns 0 on "quit". */
static int command(int ep, int ctl) {
    char text[512];
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {text, sizeof text - 1};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(ctl, &m, 0);
    if (n <= 0) return 0; /* the generator is gone */
    text[n] = 0;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
    unsigned id, dir, rtp, port;
    char ip[64], path[400];
    if (sscanf(text, "leg %u %u %u", &id, &dir, &rtp) == 3 && fd >= 0) {
        drop(ep, id);
        struct leg *l = leg_at(id);
        memset(l, 0, sizeof *l);
        l->fd = fd, l->dir = (int)(dir & 1), l->rtp = (int)rtp, l->used = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        active[nactive++] = id;
        return 1;
    }
    if (fd >= 0) close(fd);
    if (sscanf(text, "dest %u %63s %u", &id, ip, &port) == 3 && id < nlegs && legs[id].used) {
        struct leg *l = &legs[id];
        l->dest.sin_family = AF_INET;
        l->dest.sin_port = htons((uint16_t)port);
        l->has_dest = inet_pton(AF_INET, ip, &l->dest.sin_addr) == 1;
    } else if (sscanf(text, "nodest %u", &id) == 1 && id < nlegs) {
        legs[id].has_dest = 0;
    } else if (sscanf(text, "drop %u", &id) == 1) {
        drop(ep, id);
    } else if (strcmp(text, "start") == 0) {
        w0 = now_ns(CLOCK_REALTIME), w1 = INT64_MAX, nlate = 0;
    } else if (strcmp(text, "stop") == 0) {
        w1 = now_ns(CLOCK_REALTIME);
    } else if (sscanf(text, "report %399s", path) == 1) {
        const char *answer = report(path) == 0 ? "ok" : "error";
        send(ctl, answer, strlen(answer), 0);
    } else if (strcmp(text, "quit") == 0) {
        return 0;
    } else {
        fprintf(stderr, "rtpblast: unknown command %s\n", text);
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: rtpblast CONTROL_FD\n");
        return 2;
    }
    int ctl = atoi(argv[1]);
    for (int d = 0; d < 2; d++) ways[d].hist = calloc(BINS, sizeof(uint32_t));
    leg_at(0);
    int ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{0, PTIME_NS}, {0, PTIME_NS}};
    timerfd_settime(tfd, 0, &its, NULL);
    int64_t due = now_ns(CLOCK_MONOTONIC) + PTIME_NS;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = CTL_KEY};
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev);
    ev.data.u32 = TICK_KEY;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { perror("rtpblast: epoll_wait"); return 2; }
        for (int i = 0; i < n; i++) {
            uint32_t key = evs[i].data.u32;
            if (key == CTL_KEY) {
                if (!command(ep, ctl)) return 0;
            } else if (key == TICK_KEY) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) != sizeof expirations) continue;
                /* Behind: one tick, no burst to catch up (as the Python sender). */
                int64_t now = now_ns(CLOCK_MONOTONIC);
                due += (int64_t)(expirations - 1) * PTIME_NS;
                if (nlate == caplate) {
                    caplate = caplate ? caplate * 2 : 4096;
                    lateness = realloc(lateness, caplate * sizeof *lateness);
                    if (!lateness) { perror("rtpblast: realloc"); return 2; }
                }
                lateness[nlate++] = (double)(now - due) / 1e9;
                due += PTIME_NS;
                tick();
            } else if (key < nlegs && legs[key].used) {
                receive(legs[key].fd);
            }
        }
    }
}
