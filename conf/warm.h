/* pycni's launcher, the warm path: hand the call to a warm process of this same bundle.
 *
 * A warm process (`pycni serve`, cni/warm) has every plugin module imported already and hands
 * each call to a child of its own (forked ahead of it) that runs it as this launcher would. The launcher connects to its socket,
 * sends argv, the environment, the umask and the bundle's build id, and waits, bounded, for the
 * child to say it is ready ('A'). Only then does it commit: 'G' goes with its stdin, stdout,
 * stderr and working directory as descriptors (SCM_RIGHTS), so nothing that is not committed
 * to the call ever holds them (a runtime waits for its pipes to close). From that moment the
 * child owns the call, and the launcher waits for its exit status and leaves with it. Before it, anything
 * unexpected (no socket, a busy or stopped server, a refusal, a timeout, a server that is not
 * root) closes the connection, which makes the child leave without running anything, and
 * the call runs cold, in this process, as it always did: never twice, never not at all.
 * The wire format is described in cni/warm/protocol.py, which reads it.
 */
#ifndef PYCNI_WARM_H
#define PYCNI_WARM_H

#define WARM_DEFAULT_SOCKET "/run/pycni/warm.sock"
/* From connect to the child's 'A': a warm call starts in about a millisecond; a server that
 * does not answer within this costs the call this long, and then it runs cold. */
#define WARM_HANDOVER_MS 500
#define WARM_MAGIC "PYCNIW1"
#define WARM_MAX_PAYLOAD (4u << 20)

static long warm_ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for `events` on fd until the deadline: 1 ready, 0 not (timeout or error). */
static int warm_wait(int fd, short events, const struct timespec *deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        long left = warm_ms_left(deadline);
        int r;
        if (left <= 0)
            return 0;
        r = poll(&p, 1, (int)left);
        if (r > 0)
            return (p.revents & events) != 0;
        if (r == 0 || errno != EINTR)
            return 0;
    }
}

/* The request: header (magic, kind 'C', payload length) then NUL-terminated fields: build id,
 * umask in octal, argc, argv..., environ... Returns a malloc'ed buffer, or NULL. */
static char *warm_request(int argc, char **argv, const char *build_id, size_t *size)
{
    extern char **environ;
    size_t len = 0, at;
    char umask_text[16], argc_text[16], *buf;
    mode_t mask = umask(077);
    uint32_t payload;

    umask(mask);
    snprintf(umask_text, sizeof umask_text, "%o", (unsigned)mask);
    snprintf(argc_text, sizeof argc_text, "%d", argc);
    len += strlen(build_id) + 1 + strlen(umask_text) + 1 + strlen(argc_text) + 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    for (char **e = environ; *e; e++)
        len += strlen(*e) + 1;
    if (len > WARM_MAX_PAYLOAD || !(buf = malloc(12 + len)))
        return NULL;
    memcpy(buf, WARM_MAGIC, 7);
    buf[7] = 'C';
    payload = (uint32_t)len;
    for (int i = 0; i < 4; i++)
        buf[8 + i] = (char)((payload >> (8 * i)) & 0xff); /* little-endian */
    at = 12;
#define PUT(s) do { size_t n_ = strlen(s) + 1; memcpy(buf + at, (s), n_); at += n_; } while (0)
    PUT(build_id);
    PUT(umask_text);
    PUT(argc_text);
    for (int i = 0; i < argc; i++)
        PUT(argv[i]);
    for (char **e = environ; *e; e++)
        PUT(*e);
#undef PUT
    *size = at;
    return buf;
}

/* Send the request; 1 when all of it went out in time. */
static int warm_send(int sock, const char *buf, size_t size, const struct timespec *deadline)
{
    size_t sent = 0;

    while (sent < size) {
        ssize_t n = send(sock, buf + sent, size - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN) {
            if (!warm_wait(sock, POLLOUT, deadline))
                return 0;
        } else
            return 0;
    }
    return 1;
}

/* The commit: 'G' with stdin, stdout, stderr and the working directory; 1 when it went out. */
static int warm_commit(int sock, int cwd)
{
    int fds[4] = {0, 1, 2, cwd};
    union {
        char space[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = "G", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    struct cmsghdr *c;
    ssize_t n;

    memset(&control, 0, sizeof control);
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1;
}

/* The exit status the child reported, as this process's own: an exit code, or the same signal. */
static void warm_leave(char kind, const unsigned char *value)
{
    int32_t v = (int32_t)((uint32_t)value[0] | (uint32_t)value[1] << 8 | (uint32_t)value[2] << 16
                          | (uint32_t)value[3] << 24);
    if (kind == 'S' && v > 0 && v < 65) {
        sigset_t set;
        signal(v, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, v);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(v);
        _exit(128 + v);
    }
    _exit(kind == 'X' ? (int)(v & 0xff) : 1);
}

/* After the commit: wait (unbounded, as for a cold call) for the 5-byte status, and leave. */
static void warm_finish(int sock)
{
    unsigned char status[5];
    size_t got = 0;
    int flags = fcntl(sock, F_GETFL);

    fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
    while (got < sizeof status) {
        ssize_t n = read(sock, status + got, sizeof status - got);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    if (got == sizeof status && (status[0] == 'X' || status[0] == 'S'))
        warm_leave((char)status[0], status + 1);
    /* The child died and so did the warm process that would have said how: the call ran (or
     * began to), so it is not run again; it failed. */
    static const char lost[] = "pycni: the warm call ended without an exit status\n";
    if (write(2, lost, sizeof lost - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

/* Try the warm path; returns only when the call was not handed over (then it runs cold). */
static void warm_call(int argc, char **argv, const char *build_id)
{
    const char *path = getenv("PYCNI_WARM_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timespec deadline;
    struct ucred peer;
    socklen_t peer_len = sizeof peer;
    char *request = NULL, reply;
    size_t size = 0;
    int sock = -1, cwd = -1;

    if (path && strcmp(path, "off") == 0)
        return;
    if (!path || !*path)
        path = WARM_DEFAULT_SOCKET;
    if (strlen(path) >= sizeof addr.sun_path || geteuid() != 0)
        return;
    strcpy(addr.sun_path, path);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += WARM_HANDOVER_MS / 1000;
    deadline.tv_nsec += (WARM_HANDOVER_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (sock < 0)
        return;
    /* A unix socket connects at once or not at all (EAGAIN: its backlog is full): no wait. */
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0)
        goto cold;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) < 0 || peer.uid != 0)
        goto cold;
    cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || !(request = warm_request(argc, argv, build_id, &size)))
        goto cold;
    if (!warm_send(sock, request, size, &deadline))
        goto cold;
    free(request);
    request = NULL;
    for (;;) {
        ssize_t n;
        if (!warm_wait(sock, POLLIN, &deadline))
            goto cold;
        n = read(sock, &reply, 1);
        if (n == 1)
            break;
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        goto cold; /* EOF or an error: refused, or the server died */
    }
    if (reply != 'A')
        goto cold;
    /* Once 'G' is out, the child runs the call and nothing here runs it again. */
    if (!warm_commit(sock, cwd))
        goto cold;
    close(cwd);
    warm_finish(sock);
cold:
    free(request);
    if (cwd >= 0)
        close(cwd);
    close(sock);
}

#endif
