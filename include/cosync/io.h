/*
 * cosync/io.h - the I/O layer: tasks that wait on file descriptors
 * (loop.add_reader / add_writer), non-blocking sockets (loop.sock_recv,
 * sock_sendall, sock_accept, sock_connect, sock_recvfrom, sock_sendto)
 * and signals (loop.add_signal_handler). Included by <cosync.h>;
 * docs/io.md is the guide.
 *
 * A descriptor is used through a handle, a cosync_io the caller embeds
 * (as libuv's uv_poll_t). The handle is registered with the epoll of the
 * loop of the first task that waits on it, and stays that loop's until
 * it is closed. At most one task waits to read from a handle, and one to
 * write, at a time (trio's rule: a second gets COSYNC_EBUSY; asyncio's
 * add_reader would silently replace the first).
 *
 * Every call that can wait tries the operation first: one that can
 * complete at once does, whatever its deadline, without suspending (as
 * asyncio's sock_recv does when data is there). A wait ended by a cancel
 * or a deadline has transferred nothing: no byte is lost. A wait that has
 * been granted completes its transfer even if a cancel comes before the
 * task runs again; the cancel comes at the next suspension.
 */
#ifndef COSYNC_IO_H
#define COSYNC_IO_H

#ifndef COSYNC_H
#error "include <cosync.h>, which includes this header"
#endif

#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The codes of this layer: negated errno values, as every code (the
 * system calls' other errors come back the same way, named by
 * cosync_err_name). */
/** The handle was closed while a task waited on it, or is used after
 * cosync_io_close (asyncio: OSError(EBADF); trio: ClosedResourceError). */
#define COSYNC_EBADF (-EBADF)
#define COSYNC_EPIPE (-EPIPE)               /**< the peer has gone (BrokenPipeError) */
#define COSYNC_ECONNRESET (-ECONNRESET)     /**< reset by the peer (ConnectionResetError) */
#define COSYNC_ECONNREFUSED (-ECONNREFUSED) /**< nobody listens (ConnectionRefusedError) */
#define COSYNC_EADDRINUSE (-EADDRINUSE)     /**< the address is taken */
#define COSYNC_EAFNOSUPPORT (-EAFNOSUPPORT) /**< an address family the system lacks */
#define COSYNC_ENOTCONN (-ENOTCONN)         /**< the socket is not connected */
#define COSYNC_EMFILE (-EMFILE)             /**< out of descriptors */
#define COSYNC_EMSGSIZE (-EMSGSIZE)         /**< a datagram too long to send */
#define COSYNC_ENOENT (-ENOENT) /**< no such file: a program not found (FileNotFoundError) */
#define COSYNC_EACCES (-EACCES) /**< permission denied (PermissionError) */
/** A name with no address (socket.gaierror): not known, or no answer. */
#define COSYNC_ENONAME (-10003)
/** TLS failed (ssl.SSLError): the handshake, a record or an alert from the
 * peer; cosync_tls_error (<cosync/tls.h>) gives OpenSSL's reason. */
#define COSYNC_ETLS (-10004)
/** The peer's certificate was not accepted (ssl.SSLCertVerificationError):
 * untrusted, expired, or not for the name asked for. */
#define COSYNC_ECERT (-10005)

/* ========================================================================
 * Waiting on file descriptors
 * ===================================================================== */

/** Readiness, for cosync_io_wait: readable (or at its end, or in error). */
#define COSYNC_IO_READ 1
/** Readiness, for cosync_io_wait: writable (or hung up, or in error). */
#define COSYNC_IO_WRITE 2

/** A file descriptor as the loop watches it, embedded by the caller.
 * Fields are private. Zeroed memory is a closed handle. */
typedef struct cosync_io {
    /* private */
    int fd;
    uint8_t state;            /* closed (0), open, registered */
    uint8_t ready;            /* readiness seen and not yet taken by a wait */
    struct cosync_loop *loop; /* whose epoll it is registered with */
    struct cosync__task *reader;
    struct cosync__task *writer;
    cosync__node node; /* in the loop's list of registered handles */
    /* a handle the library watches for itself (the libcurl driver):
     * level-triggered, each event handed to this instead of to tasks */
    void (*watch)(struct cosync_io *io, int events);
} cosync_io;

/**
 * cosync_io_init - make @io the handle of @fd, an open descriptor that
 * epoll can watch (a socket, pipe, FIFO, terminal, eventfd, signalfd,
 * timerfd; not a regular file or directory). @fd is made non-blocking;
 * the handle owns it from now on (cosync_io_close closes it). It is
 * registered with a loop's epoll on its first wait.
 * Returns 0; COSYNC_EINVAL if @io is NULL or @fd is negative; the negated
 * errno of a failed fcntl (COSYNC_EBADF for a closed @fd).
 * Not a suspension point. Not thread-safe.
 */
int cosync_io_init(cosync_io *io, int fd);

/**
 * cosync_io_fd - the descriptor of @io, or COSYNC_EBADF if it is closed.
 * Not a suspension point.
 */
int cosync_io_fd(const cosync_io *io);

/**
 * cosync_io_wait - wait until @io's descriptor is ready for @events
 * (COSYNC_IO_READ, COSYNC_IO_WRITE, or both).
 *
 * Readiness is edge-triggered, as the kernel reports it: a wait returns
 * at once with the readiness that came since the last wait took it, and
 * takes it. So the loop to write is: try the operation (read(2), say);
 * on EAGAIN, wait; try again. A wait may return for readiness that a
 * read since has used up (the next read then says EAGAIN, and the next
 * wait waits): never for none. The try form (deadline 0) also looks at
 * the descriptor itself when no kept readiness answers it (one poll(2)):
 * it says what is ready now, even while the loop, kept busy, has not
 * looked at epoll. The end of a stream, a hang-up and an
 * error count as both readable and writable (the operation then reports
 * them).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 *
 * Returns the readiness found (COSYNC_IO_READ and/or COSYNC_IO_WRITE, a
 * positive value); COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EBADF if @io is closed, or closed by another
 * task while this one waits; COSYNC_EBUSY if another task already waits
 * on @io for one of @events; COSYNC_EINVAL if @events has no valid bit,
 * or if a dense task (cosync_task_opts.dense) gives a handle in its own
 * stack; COSYNC_EPERM outside a task, or from a task of another loop than
 * the one @io is registered with (or epoll's refusal of the descriptor:
 * a regular file is always ready, and never needs a wait); another
 * negated errno if epoll_ctl fails (COSYNC_ENOMEM, ...).
 * Suspension point (unless the readiness is there). Not thread-safe.
 */
int cosync_io_wait(cosync_io *io, int events, int64_t deadline);

/**
 * cosync_io_read - read up to @len bytes (read(2)), waiting until some
 * can be read.
 * Returns the count read (0 at the end of the stream, or for @len 0);
 * COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT; COSYNC_ECANCELED;
 * the returns of cosync_io_wait; or read(2)'s negated errno.
 * Suspension point (unless data, the end or an error is there). Not
 * thread-safe.
 */
ssize_t cosync_io_read(cosync_io *io, void *buf, size_t len, int64_t deadline);

/**
 * cosync_io_write - write up to @len bytes (write(2)), waiting until some
 * can be written; may write fewer than @len (see cosync_io_write_all).
 * A pipe whose reader has gone raises SIGPIPE, as write(2) does, unless
 * the program ignores it; sockets should use cosync_sock_send, which
 * never raises it.
 * Returns the count written (at least 1 if @len is not 0); as
 * cosync_io_read otherwise (COSYNC_EPIPE: the reader has gone).
 * Suspension point (unless some can be written). Not thread-safe.
 */
ssize_t cosync_io_write(cosync_io *io, const void *buf, size_t len, int64_t deadline);

/**
 * cosync_io_write_all - write all @len bytes, waiting as often as needed.
 * @written: receives how many were written, whatever the return (on a
 *           timeout or cancel, part may have gone); may be NULL.
 * Returns 0 once all are written; otherwise the error that stopped it (as
 * cosync_io_write).
 * Suspension point. Not thread-safe.
 */
int cosync_io_write_all(cosync_io *io, const void *buf, size_t len, size_t *written,
                        int64_t deadline);

/**
 * cosync_io_close - close @io: take it off its loop's epoll, end the waits
 * of tasks waiting on it with COSYNC_EBADF (they run at the loop's next
 * step), and close its descriptor. A closed handle (zeroed memory too)
 * gives COSYNC_EBADF for every further use but this call, which returns
 * 0 again. Handles must be closed before their memory is reused: the loop
 * knows them by address. A handle still open when its loop is destroyed
 * is cut loose from it (its descriptor stays open, and may be closed
 * later, or registered with another loop).
 * Returns 0; COSYNC_EINVAL if @io is NULL; COSYNC_EPERM from a task of
 * another loop than @io's (nothing changes).
 * Not a suspension point. Not thread-safe (call it from a task of @io's
 * loop, or while that loop does not run).
 */
int cosync_io_close(cosync_io *io);

/**
 * cosync_io_release - as cosync_io_close, but leave the descriptor open
 * (in non-blocking mode) and return it to the caller.
 * Returns the descriptor; COSYNC_EBADF if @io is closed; COSYNC_EINVAL;
 * COSYNC_EPERM as cosync_io_close. Not a suspension point. Not
 * thread-safe.
 */
int cosync_io_release(cosync_io *io);

/* ========================================================================
 * Socket addresses
 * ===================================================================== */

/** A socket address of any family, with its length. */
typedef struct cosync_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_storage storage;
    } u;
    socklen_t len;
} cosync_addr;

/** Room for cosync_addr_format's longest text, its NUL included. */
#define COSYNC_ADDR_TEXT_MAX 120

/**
 * cosync_addr_ip - fill @addr with the numeric IPv4 ("127.0.0.1") or IPv6
 * ("::1") address @ip and @port (0: any free port, once bound). Names are
 * not resolved here: cosync_addr_resolve does that.
 * Returns 0; COSYNC_EINVAL if an argument is NULL or @ip is not numeric.
 * Not a suspension point. Thread-safe.
 */
int cosync_addr_ip(cosync_addr *addr, const char *ip, uint16_t port);

/**
 * cosync_addr_resolve - the addresses of the host named @host, with @port
 * (await loop.getaddrinfo(host, port, family=family)): getaddrinfo(3) for
 * stream sockets, run on a thread of the loop's default pool
 * (cosync_to_thread). A numeric @host ("127.0.0.1", "::1") is converted at
 * once, with no thread. If the deadline passes or the caller is
 * cancelled, the call returns at once and the lookup finishes on its
 * thread and is dropped (getaddrinfo cannot be stopped); the loop's close
 * waits for it.
 * @family: AF_INET, AF_INET6, or AF_UNSPEC for both.
 * @addrs:  receives up to @cap addresses, in getaddrinfo's order (the
 *          order to try them in, RFC 6724).
 * Returns how many addresses it stored (at least 1; a host may have more
 * than @cap); COSYNC_ENONAME if the name has no address, or the resolver
 * could not answer (EAI_NONAME, EAI_AGAIN, EAI_FAIL, ...); COSYNC_EAGAIN
 * for deadline 0 and a name that needs a lookup; COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EINVAL if @host or @addrs is NULL, @cap is 0,
 * or @family is another; COSYNC_ENOMEM; COSYNC_EPERM outside a task (for
 * a name that needs a lookup); the returns of cosync_to_thread.
 * Suspension point (unless @host is numeric). Not thread-safe.
 */
int cosync_addr_resolve(const char *host, uint16_t port, int family, cosync_addr *addrs, size_t cap,
                        int64_t deadline);

/**
 * cosync_addr_lookup_name - the host name and the service of @addr (await
 * loop.getnameinfo(sockaddr, flags)): getnameinfo(3), run on a thread of
 * the loop's default pool, as cosync_addr_resolve runs getaddrinfo; one
 * that asks only for numbers (NI_NUMERICHOST, NI_NUMERICSERV, or a part
 * not asked for) is answered at once, with no thread. A deadline or a
 * cancel ends the wait at once, and the lookup is dropped when it ends.
 * @host:  receives the host's name (or its address as text, unless
 *         NI_NAMEREQD), NUL-terminated, in @hostlen bytes (NI_MAXHOST is
 *         always enough); NULL with @hostlen 0 to ask only for the service.
 * @serv:  the same for the service (the port's name, "http", or its
 *         number), in @servlen bytes (NI_MAXSERV); NULL with 0.
 * @flags: getnameinfo's NI_* flags.
 * Returns 0; COSYNC_ENONAME if the address has no name and NI_NAMEREQD
 * asked for one, or the resolver could not answer; COSYNC_EOVERFLOW if a
 * buffer is too small; COSYNC_EINVAL if @addr is NULL, a buffer is NULL
 * with a size, or neither part is asked for, or getnameinfo refuses the
 * address's family or the flags; COSYNC_EAGAIN for deadline 0 and an answer
 * that needs a lookup; COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_ENOMEM;
 * COSYNC_EPERM outside a task (for a lookup); the returns of
 * cosync_to_thread. The buffers are written only when it returns 0.
 * Suspension point (unless only numbers are asked for). Not thread-safe.
 */
int cosync_addr_lookup_name(const cosync_addr *addr, char *host, size_t hostlen, char *serv,
                            size_t servlen, int flags, int64_t deadline);

/**
 * cosync_addr_unix - fill @addr with the Unix-domain socket path @path.
 * Returns 0; COSYNC_EINVAL if an argument is NULL, @path is empty, or too
 * long for sun_path.
 * Not a suspension point. Thread-safe.
 */
int cosync_addr_unix(cosync_addr *addr, const char *path);

/**
 * cosync_addr_format - write @addr as text to @buf (at most @size bytes,
 * NUL included): "127.0.0.1:8080", "[::1]:8080", or "unix:/path".
 * Returns the length written; COSYNC_EINVAL for a NULL argument or an
 * unknown family; COSYNC_EOVERFLOW if @size is too small (@buf then holds
 * an empty string if @size > 0).
 * Not a suspension point. Thread-safe.
 */
int cosync_addr_format(const cosync_addr *addr, char *buf, size_t size);

/**
 * cosync_addr_port - the port of an IPv4 or IPv6 address; COSYNC_EINVAL
 * for another family or NULL. Not a suspension point. Thread-safe.
 */
int cosync_addr_port(const cosync_addr *addr);

/* ========================================================================
 * Sockets
 * ===================================================================== */

/**
 * cosync_sock_open - make a socket of @family (AF_INET, AF_INET6,
 * AF_UNIX) and @type (SOCK_STREAM, SOCK_DGRAM) and give it to @io
 * (socket(2), non-blocking, close-on-exec).
 * Returns 0; COSYNC_EINVAL if @io is NULL; socket(2)'s negated errno.
 * Not a suspension point. Not thread-safe.
 */
int cosync_sock_open(cosync_io *io, int family, int type);

/**
 * cosync_sock_bind - bind @io's socket to @addr (bind(2)); a stream
 * socket of AF_INET/AF_INET6 gets SO_REUSEADDR first, as asyncio's
 * servers set it. Port 0 takes a free port: cosync_sock_local_addr says
 * which.
 * Returns 0; COSYNC_EINVAL; COSYNC_EBADF if @io is closed; bind(2)'s
 * negated errno (COSYNC_EADDRINUSE...).
 * Not a suspension point. Not thread-safe.
 */
int cosync_sock_bind(cosync_io *io, const cosync_addr *addr);

/**
 * cosync_sock_listen - open a stream socket of @addr's family in @io, bind
 * it to @addr and listen with a queue of @backlog (0: SOMAXCONN). On
 * failure @io is left closed.
 * Returns 0; COSYNC_EINVAL if an argument is NULL or @backlog is
 * negative; the negated errno of the failed system call.
 * Not a suspension point. Not thread-safe.
 */
int cosync_sock_listen(cosync_io *io, const cosync_addr *addr, int backlog);

/**
 * cosync_sock_accept - take the next connection of the listening socket
 * @listener (await loop.sock_accept(sock)) into @conn (opened here,
 * non-blocking); its peer's address goes to *@peer if @peer is not NULL.
 * Connections that fail before they are taken (ECONNABORTED) are passed
 * over.
 * Returns 0; COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EINVAL if @listener or @conn is NULL; the
 * returns of cosync_io_wait; accept4(2)'s negated errno (COSYNC_EMFILE,
 * ...). @conn is left untouched unless it returns 0.
 * Suspension point (unless a connection is waiting). Not thread-safe.
 */
int cosync_sock_accept(cosync_io *listener, cosync_io *conn, cosync_addr *peer, int64_t deadline);

/**
 * cosync_sock_connect - connect @io's socket to @addr (await
 * loop.sock_connect(sock, addr)), waiting for the connection to be made.
 * After a timeout or cancel the socket's state is unknown: close it.
 * Returns 0; COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_EAGAIN for
 * deadline 0 while the connection is under way (it goes on: a further
 * call waits for it), and, whatever the deadline, when a Unix-domain
 * listener's queue is full (connect(2)'s EAGAIN: nothing was begun, and
 * nothing would say when there is room; Go and tokio report it too);
 * the returns of cosync_io_wait; connect(2)'s negated errno
 * (COSYNC_ECONNREFUSED...).
 * Suspension point (unless it connects at once). Not thread-safe.
 */
int cosync_sock_connect(cosync_io *io, const cosync_addr *addr, int64_t deadline);

/**
 * cosync_tcp_connect - open a stream socket of @addr's family in @io and
 * connect it (asyncio.open_connection's socket part). On failure @io is
 * left closed.
 * Returns as cosync_sock_connect and cosync_sock_open.
 * Suspension point. Not thread-safe.
 */
int cosync_tcp_connect(cosync_io *io, const cosync_addr *addr, int64_t deadline);

/**
 * cosync_tcp_connect_host - resolve @host (cosync_addr_resolve, both
 * families) and connect a new stream socket in @io to the first of its
 * addresses that accepts, trying them in order, all within @deadline
 * (asyncio.open_connection(host, port)'s socket part; Go's net.Dial).
 * On failure @io is left closed.
 * Returns 0; the returns of cosync_addr_resolve; the last address's
 * error from cosync_tcp_connect (COSYNC_ECONNREFUSED...); a deadline, a
 * cancellation or COSYNC_EAGAIN (deadline 0) ends the tries at once.
 * Suspension point (unless it connects at once). Not thread-safe.
 */
int cosync_tcp_connect_host(cosync_io *io, const char *host, uint16_t port, int64_t deadline);

/** cosync_connect_opts.interleave: the resolver's order, even with a
 * Happy Eyeballs delay (asyncio's interleave=0). */
#define COSYNC_CONNECT_NO_INTERLEAVE (-1)

/** How cosync_tcp_connect_host_with tries a host's addresses
 * (asyncio.open_connection's happy_eyeballs_delay and interleave). Zero
 * is asyncio's default: one address at a time, in the resolver's order. */
typedef struct cosync_connect_opts {
    /** Happy Eyeballs (RFC 8305): how long an attempt has before the next
     * one begins beside it (the RFC's Connection Attempt Delay, which it
     * sets at 250 ms); 0: each address once the one before has failed. */
    int64_t happy_eyeballs_delay;
    /** The addresses reordered to alternate between the two families,
     * this many of the first address's family first (the RFC's First
     * Address Family Count); 0: 1 with a happy_eyeballs_delay, else no
     * reordering (asyncio's default); COSYNC_CONNECT_NO_INTERLEAVE: the
     * resolver's order. */
    int interleave;
} cosync_connect_opts;

/**
 * cosync_tcp_connect_host_with - cosync_tcp_connect_host, with @opts
 * (NULL: as cosync_tcp_connect_host). With a happy_eyeballs_delay, the
 * attempts race (asyncio's Happy Eyeballs, trio's open_tcp_stream, Go's
 * Dialer.FallbackDelay): the first begins at once, each next one when the
 * one before it has had the delay or has failed, whichever comes first;
 * the first to connect wins and every other is closed. The calling task
 * makes every attempt itself, through an epoll of its own: no task is
 * spawned, and the epoll's handle is the one thing allocated (off the
 * task's stack, so that a dense task may race too).
 * Returns 0; COSYNC_EINVAL if @io is NULL, the delay is negative, or
 * interleave is below COSYNC_CONNECT_NO_INTERLEAVE; the returns of
 * cosync_addr_resolve; the error of the last attempt to fail if none
 * connects (COSYNC_ECONNREFUSED...); a deadline, a cancellation or
 * COSYNC_EAGAIN (deadline 0) ends the tries at once, every attempt
 * closed; an epoll's negated errno (COSYNC_EMFILE). On failure @io is
 * left closed.
 * Suspension point (unless it connects at once). Not thread-safe.
 */
int cosync_tcp_connect_host_with(cosync_io *io, const char *host, uint16_t port,
                                 const cosync_connect_opts *opts, int64_t deadline);

/**
 * cosync_sock_local_addr - the address @io's socket is bound to
 * (getsockname(2)): the port a bind to port 0 took.
 * Returns 0; COSYNC_EINVAL; COSYNC_EBADF; getsockname's negated errno.
 * Not a suspension point.
 */
int cosync_sock_local_addr(const cosync_io *io, cosync_addr *addr);

/**
 * cosync_sock_peer_addr - the address of @io's peer (getpeername(2)).
 * Returns as cosync_sock_local_addr (COSYNC_ENOTCONN if not connected).
 * Not a suspension point.
 */
int cosync_sock_peer_addr(const cosync_io *io, cosync_addr *addr);

/**
 * cosync_sock_recv - receive up to @len bytes (await loop.sock_recv(sock,
 * len)).
 * Returns the count received (0 when the peer has shut down its side,
 * or for @len 0); as cosync_io_read otherwise (COSYNC_ECONNRESET...).
 * Suspension point (unless data or the end is there). Not thread-safe.
 */
ssize_t cosync_sock_recv(cosync_io *io, void *buf, size_t len, int64_t deadline);

/**
 * cosync_sock_send - send up to @len bytes; never raises SIGPIPE (a peer
 * that has gone gives COSYNC_EPIPE or COSYNC_ECONNRESET).
 * Returns the count sent (at least 1 if @len is not 0); as cosync_io_write
 * otherwise. Suspension point (unless some can be sent). Not thread-safe.
 */
ssize_t cosync_sock_send(cosync_io *io, const void *buf, size_t len, int64_t deadline);

/**
 * cosync_sock_sendall - send all @len bytes (await loop.sock_sendall(sock,
 * data)); never raises SIGPIPE.
 * @sent: receives how many were sent, whatever the return; may be NULL.
 * Returns 0 once all are sent; otherwise the error that stopped it.
 * Suspension point. Not thread-safe.
 */
int cosync_sock_sendall(cosync_io *io, const void *buf, size_t len, size_t *sent, int64_t deadline);

/**
 * cosync_sock_sendfile - send the bytes of the file @fd from @offset on
 * (await loop.sock_sendfile(sock, file, offset, count)): @count of them,
 * or, with @count 0, up to the file's end. The kernel copies them
 * (sendfile(2)); a file it cannot send that way (EINVAL, ENOSYS) is read
 * and sent through a buffer instead (asyncio's fallback). @fd's file
 * position is neither used nor moved (asyncio moves it: seek to @offset
 * plus *@sent to do the same). Never raises SIGPIPE.
 * @sent: receives how many bytes were sent, whatever the return; may be
 *        NULL.
 * Returns 0 once @count bytes, or the rest of the file, are sent (fewer
 * if the file ends first); COSYNC_EINVAL if @io is NULL or @fd or @offset
 * is negative; COSYNC_ETIMEDOUT, COSYNC_ECANCELED, COSYNC_EAGAIN
 * (deadline 0) and the socket's errors as cosync_sock_send; a read's
 * negated errno (-ESPIPE for a pipe, which has no offsets); COSYNC_ENOMEM
 * for the fallback's buffer.
 * Suspension point (unless it can all be sent at once). Not thread-safe.
 */
int cosync_sock_sendfile(cosync_io *io, int fd, off_t offset, size_t count, size_t *sent,
                         int64_t deadline);

/**
 * cosync_sock_recvfrom - receive one datagram of at most @len bytes (the
 * rest of a longer one is dropped, as recvfrom(2) drops it) and its
 * sender's address into *@from if not NULL (await
 * loop.sock_recvfrom(sock, len)).
 * Returns the datagram's length as received; as cosync_io_read otherwise.
 * Suspension point (unless a datagram is there). Not thread-safe.
 */
ssize_t cosync_sock_recvfrom(cosync_io *io, void *buf, size_t len, cosync_addr *from,
                             int64_t deadline);

/**
 * cosync_sock_sendto - send one datagram of @len bytes to @to (NULL: the
 * connected peer) (await loop.sock_sendto(sock, data, addr)).
 * Returns @len; as cosync_io_write otherwise (COSYNC_EMSGSIZE...).
 * Suspension point (unless it can be sent at once). Not thread-safe.
 */
ssize_t cosync_sock_sendto(cosync_io *io, const void *buf, size_t len, const cosync_addr *to,
                           int64_t deadline);

/**
 * cosync_sock_shutdown - shut down part of a full-duplex connection
 * (shutdown(2)): SHUT_WR sends the end of the stream (writer.write_eof()).
 * Returns 0; COSYNC_EINVAL; COSYNC_EBADF; shutdown's negated errno.
 * Not a suspension point. Not thread-safe.
 */
int cosync_sock_shutdown(cosync_io *io, int how);

/* ========================================================================
 * Servers: a listening socket and a task per connection
 * ===================================================================== */

/**
 * cosync_conn_fn - a server's handler, run in a task of its own for each
 * connection (asyncio.start_server's client_connected_cb).
 * @conn: the connection's handle (wrap it in a cosync_stream for
 *        readline and the like). The server closes it when the handler
 *        returns, if the handler has not.
 * @peer: the client's address.
 * @arg:  what cosync_server_serve was given.
 * Returns the task's status: a negative one other than COSYNC_ECANCELED
 * counts as a failure in the server's stats (asyncio logs the exception).
 */
typedef int (*cosync_conn_fn)(cosync_io *conn, const cosync_addr *peer, void *arg);

enum { COSYNC__SERVER_OPEN = 1, COSYNC__SERVER_CLOSED = 2 };

/** The most addresses one server listens on (cosync_server_listen_addrs,
 * cosync_server_listen_host). */
#define COSYNC_SERVER_MAX_LISTENERS 8

/** A stream server (asyncio.Server). Caller-embedded; fields are
 * private; zero-filled memory is a server that every call but
 * cosync_server_get_stats refuses (COSYNC_EINVAL) until
 * cosync_server_listen. Its listeners belong to the loop that first waits
 * on them (the first serve's). */
typedef struct cosync_server {
    /* private */
    cosync_io listeners[COSYNC_SERVER_MAX_LISTENERS];
    cosync_io poller;         /* an epoll of the listeners, when there are several */
    uint8_t nlisteners;       /* listeners[0, nlisteners) are open until the close */
    uint8_t next;             /* the listener an accept tries first */
    cosync__list conns;       /* the connections whose tasks live */
    cosync__waitq closed_q;   /* tasks in cosync_server_wait_closed */
    cosync__waitq pause_q;    /* the serving task, while accepting pauses */
    struct cosync_loop *loop; /* of its tasks (serving, connections), while any lives */
    size_t nconns;
    uint64_t accepted;
    uint64_t failed;
    uint8_t state; /* 0 (not listening), open, closed */
    uint8_t serving;
    char path[108]; /* a Unix-domain listener's socket file, removed at the close */
    dev_t path_dev;
    ino_t path_ino;
} cosync_server;

/**
 * cosync_server_listen - open @srv listening on @addr (TCP, or a
 * Unix-domain path: asyncio.start_server and start_unix_server, before
 * serve_forever), with a queue of @backlog (0: SOMAXCONN). A listener
 * binds with SO_REUSEADDR (cosync_sock_bind). A Unix-domain path's socket
 * file is removed by the close, if it is still the one this bind made
 * (asyncio 3.13's cleanup_socket). Listening with a server in use (not
 * destroyed) is undefined: it forgets its listener and its tasks.
 * Returns 0; COSYNC_EINVAL if @srv or @addr is NULL (nothing changes);
 * COSYNC_EINVAL for a negative @backlog, and the returns of
 * cosync_sock_listen (COSYNC_EADDRINUSE...): then @srv is refused by
 * every call until a listen succeeds.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_listen(cosync_server *srv, const cosync_addr *addr, int backlog);

/**
 * cosync_server_listen_fd - open @srv listening on @fd, a stream socket
 * the caller made and bound (asyncio.start_server(sock=...), or a socket
 * a service manager passed on), with a queue of @backlog (0: SOMAXCONN):
 * listen(2) is called on it, so one that listens already is taken too.
 * The server owns @fd from then on (its close closes it; a Unix-domain
 * one's socket file is removed then, as cosync_server_listen's is).
 * Returns 0; COSYNC_EINVAL (nothing changes) if @srv is NULL, @fd or
 * @backlog is negative, or @fd is not a stream socket; getsockopt's or
 * listen's negated errno (COSYNC_EBADF for a closed @fd, -ENOTSOCK for
 * a descriptor that is not a socket): then @fd stays the caller's, open,
 * and @srv is refused by every call until a listen succeeds.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_listen_fd(cosync_server *srv, int fd, int backlog);

/**
 * cosync_server_listen_addrs - open @srv listening on each of the @n TCP
 * addresses @addrs (asyncio.start_server with several hosts, or a host
 * with several addresses): one socket each, all served by one
 * cosync_server_serve. An IPv6 socket of several is IPv6-only
 * (IPV6_V6ONLY, as asyncio sets it), so that "::" and "0.0.0.0" can be
 * listened on together. Addresses whose port is 0 all get the one free
 * port the first of them is given (asyncio gives each its own). An
 * address of a family the system lacks (COSYNC_EAFNOSUPPORT) is passed
 * over, as asyncio passes over a socket it cannot create; any other
 * failure closes what was opened and fails the call. A Unix-domain
 * address must be alone (cosync_server_listen).
 * @n:       1 to COSYNC_SERVER_MAX_LISTENERS.
 * @backlog: as for cosync_server_listen.
 * Returns 0; COSYNC_EINVAL (nothing changes) if @srv or @addrs is NULL, @n
 * is 0 or above the maximum, @backlog is negative, or an address among
 * several is not IPv4 or IPv6 (a Unix-domain one, say); otherwise as cosync_server_listen (the
 * error of the first address that fails; COSYNC_EAFNOSUPPORT if no family is supported), and @srv
 * is then refused by every call until a listen succeeds. Not a suspension point. Not thread-safe.
 */
int cosync_server_listen_addrs(cosync_server *srv, const cosync_addr *addrs, size_t n, int backlog);

/**
 * cosync_server_listen_host - resolve @host (cosync_addr_resolve, both
 * families) and open @srv listening on every one of its addresses (at
 * most COSYNC_SERVER_MAX_LISTENERS, an address the resolver gives twice
 * once), as asyncio.start_server(host, port) does: "localhost" is then
 * served on 127.0.0.1 and on ::1 where it has both. A NULL or empty
 * @host is every interface (asyncio's host None): 0.0.0.0 and ::, the
 * second IPv6-only, with no lookup. @port 0 is one free port for all
 * (cosync_server_local_addr tells which).
 * Returns as cosync_server_listen_addrs and cosync_addr_resolve.
 * Suspension point (unless @host is numeric, NULL or empty). Not
 * thread-safe.
 */
int cosync_server_listen_host(cosync_server *srv, const char *host, uint16_t port, int backlog,
                              int64_t deadline);

/**
 * cosync_server_local_addr - the address @srv listens on, the first if it
 * listens on several (server.sockets[0].getsockname()). Returns 0;
 * COSYNC_EINVAL; COSYNC_EBADF once closed.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_local_addr(const cosync_server *srv, cosync_addr *addr);

/**
 * cosync_server_local_addrs - the addresses @srv listens on
 * ([s.getsockname() for s in server.sockets]), in the order of the listen
 * call's addresses: the first @cap of them go to @addrs.
 * Returns how many it listens on (which may be more than @cap);
 * COSYNC_EINVAL if @srv is NULL or not listening, or @addrs is NULL and
 * @cap is not 0; COSYNC_EBADF once closed; getsockname's negated errno.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_local_addrs(const cosync_server *srv, cosync_addr *addrs, size_t cap);

/**
 * cosync_server_serve - accept connections until @srv is closed
 * (server.serve_forever()), each served by @handler(@conn, @peer, @arg) in
 * a task of its own, spawned with @opts (NULL: defaults; a task without a
 * name is named after its peer, "127.0.0.1:51234"). A handler starts at
 * once (an eager start): it runs until it first suspends before the next
 * accept. A handler task that cannot be spawned (no memory, an absurd
 * stack size in @opts) has its connection closed, counted as failed in
 * the stats. When descriptors or memory run out, accepting pauses for a
 * second, as asyncio's does (a close ends the pause). A cancel or the
 * deadline closes the server,
 * as serve_forever's cancel does; the connections go on
 * (cosync_server_close_clients, cosync_server_wait_closed).
 * Returns 0 once the server is closed (cosync_server_close, from any
 * task or handler); COSYNC_ECANCELED; COSYNC_ETIMEDOUT; COSYNC_EAGAIN for
 * deadline 0, once the connections that were waiting are served (the
 * server stays open); COSYNC_EBUSY if another task
 * serves @srv; COSYNC_EBADF if it is closed; COSYNC_EINVAL for a NULL
 * @handler, or @srv not listening; COSYNC_EPERM outside a task, or from
 * another loop than the one its connections are served in or its
 * listener's; an accept's error other than the lack of descriptors or
 * memory (with deadline 0, those too: COSYNC_EMFILE, COSYNC_ENOMEM...).
 * Suspension point. Not thread-safe.
 */
int cosync_server_serve(cosync_server *srv, cosync_conn_fn handler, void *arg,
                        const cosync_task_opts *opts, int64_t deadline);

/**
 * cosync_server_close - stop listening (server.close()): the listening
 * socket is closed, a task in cosync_server_serve returns 0, and the
 * connections being served go on. Closing twice does nothing.
 * Returns 0; COSYNC_EPERM from a task of another loop than the
 * listener's (nothing changes); COSYNC_EINVAL for a server not listening.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_close(cosync_server *srv);

/**
 * cosync_server_close_clients - cancel the task of every connection being
 * served (server.close_clients(), Python 3.13); each handler sees
 * COSYNC_ECANCELED at its current or next suspension, and its connection
 * is closed when it returns. Returns 0; COSYNC_EINVAL.
 * Not a suspension point. Not thread-safe.
 */
int cosync_server_close_clients(cosync_server *srv);

/**
 * cosync_server_wait_closed - wait until @srv is closed, the task that
 * served it has left cosync_server_serve, and every connection's handler
 * has returned (await server.wait_closed(), 3.12): then it can be
 * destroyed.
 * Returns 0; COSYNC_EAGAIN / COSYNC_ETIMEDOUT; COSYNC_ECANCELED;
 * COSYNC_EDEADLK from a handler of @srv (it would wait for itself);
 * COSYNC_EPERM (when it must wait) outside a task, or from another loop
 * than the server's tasks'; COSYNC_EINVAL.
 * Suspension point (unless that is so already). Not thread-safe.
 */
int cosync_server_wait_closed(cosync_server *srv, int64_t deadline);

/**
 * cosync_server_destroy - close @srv if open, and forget it: every later
 * call returns COSYNC_EINVAL until the next listen.
 * Returns 0; COSYNC_EBUSY (nothing changes) while a task serves it, a
 * connection's handler runs, or a task waits for its close; COSYNC_EPERM
 * (nothing changes) if it is open and its listener belongs to another
 * loop than the caller's; COSYNC_EINVAL. Not a suspension point. Not
 * thread-safe.
 */
int cosync_server_destroy(cosync_server *srv);

/** A server's counts: connections being served, accepted in all, whose
 * handler failed (or never ran), and whether a task serves it and it
 * still listens. */
typedef struct cosync_server_stats {
    size_t connections;
    uint64_t accepted;
    uint64_t failed;
    bool serving;
    bool open;
} cosync_server_stats;

/**
 * cosync_server_get_stats - fill @stats. Returns 0; COSYNC_EINVAL for a
 * NULL argument. Not a suspension point. Not thread-safe.
 */
int cosync_server_get_stats(const cosync_server *srv, cosync_server_stats *stats);

/* ========================================================================
 * Streams: buffered reads by line, by separator, by count
 * ===================================================================== */

/**
 * A transport under a stream other than a handle (cosync_stream_init_ops):
 * TLS (cosync_tls_stream_init, <cosync/tls.h>) or the program's own. Both
 * functions are called from the task that uses the stream, with the
 * stream's deadline, and follow the contracts of the handle's calls:
 * @read:  read up to @len bytes, waiting until some come, as
 *         cosync_io_read: the count (at least 1 for @len > 0), 0 at the
 *         end of the stream, or an error; a read that fails has taken
 *         nothing.
 * @write: write all @len bytes, as cosync_io_write_all: 0, or the error
 *         that stopped it, with the count taken in *@written either way.
 */
typedef struct cosync_stream_ops {
    ssize_t (*read)(void *ctx, void *buf, size_t len, int64_t deadline);
    int (*write)(void *ctx, const void *buf, size_t len, size_t *written, int64_t deadline);
} cosync_stream_ops;

/** A buffered reader and writer over a handle (asyncio's StreamReader and
 * StreamWriter), embedded by the caller. Fields are private. */
typedef struct cosync_stream {
    /* private */
    cosync_io *io;
    const cosync_stream_ops *ops; /* a transport of its own instead of io */
    void *ctx;                    /* the transport's */
    char *buf;
    size_t cap;   /* the limit: the longest line or count it can hold */
    size_t start; /* the buffered bytes are buf[start, end) */
    size_t end;
    bool eof;     /* the peer has shut down its side (or the descriptor ended) */
    bool socket;  /* writes go through send(2), never raising SIGPIPE */
    bool reading; /* a task is inside a read */
} cosync_stream;

/** The default limit of a stream, asyncio's: 64 KiB. */
#define COSYNC_STREAM_LIMIT (64 * 1024)

/**
 * cosync_stream_init - read and write @io through a buffer of @limit bytes
 * (0: COSYNC_STREAM_LIMIT), the longest line or count a read can ask for
 * (asyncio's `limit`). The handle stays the caller's: destroying the
 * stream does not close it.
 * Returns 0; COSYNC_EINVAL if an argument is NULL; COSYNC_EBADF if @io is
 * closed; COSYNC_ENOMEM (the buffer is the one allocation).
 * Not a suspension point. Not thread-safe.
 */
int cosync_stream_init(cosync_stream *s, cosync_io *io, size_t limit);

/**
 * cosync_stream_init_ops - as cosync_stream_init, over the transport
 * @ops with @ctx (its functions' first argument) instead of a handle. The
 * transport stays the caller's: destroying the stream does not touch it.
 * Returns 0; COSYNC_EINVAL if @s or @ops or one of its functions is NULL;
 * COSYNC_ENOMEM.
 * Not a suspension point. Not thread-safe.
 */
int cosync_stream_init_ops(cosync_stream *s, const cosync_stream_ops *ops, void *ctx, size_t limit);

/**
 * cosync_stream_readuntil - read up to and including @sep (@seplen bytes)
 * into @out (reader.readuntil(sep)), waiting for data as needed.
 * Returns the count copied, @sep included; at the end of the stream, the
 * bytes that came before it without @sep (0 if none: then the stream has
 * ended; asyncio raises IncompleteReadError with them), as fread(3) does;
 * COSYNC_EOVERFLOW if the line, @sep included, is longer than the limit
 * or than @size (asyncio's LimitOverrunError): nothing is taken, and the
 * bytes stay buffered for cosync_stream_read; COSYNC_EAGAIN (deadline 0)
 * / COSYNC_ETIMEDOUT; COSYNC_ECANCELED; the errors of the handle's reads;
 * COSYNC_EBUSY while another task is inside a read of the stream (one
 * reads at a time, waiting or not: asyncio's RuntimeError), and nothing
 * is taken; COSYNC_EINVAL for a NULL argument or @seplen 0.
 * A read ended by an error, a cancel or the deadline has taken nothing:
 * what came stays buffered for the next read.
 * Suspension point (unless the line is buffered). Not thread-safe.
 */
ssize_t cosync_stream_readuntil(cosync_stream *s, const void *sep, size_t seplen, void *out,
                                size_t size, int64_t deadline);

/**
 * cosync_stream_readline - cosync_stream_readuntil with "\n"
 * (reader.readline()): the line with its newline, or, at the end of the
 * stream, what is left (0 once nothing is). Returns as
 * cosync_stream_readuntil. Suspension point (unless the line is
 * buffered). Not thread-safe.
 */
ssize_t cosync_stream_readline(cosync_stream *s, void *out, size_t size, int64_t deadline);

/**
 * cosync_stream_readexactly - read exactly @n bytes (reader.readexactly(n)).
 * Returns @n; fewer at the end of the stream (the bytes that were left,
 * asyncio's IncompleteReadError.partial); COSYNC_EINVAL if @n is above
 * the limit or an argument is NULL; as cosync_stream_readuntil otherwise:
 * nothing is taken until all @n have come.
 * Suspension point (unless @n bytes are buffered). Not thread-safe.
 */
ssize_t cosync_stream_readexactly(cosync_stream *s, void *out, size_t n, int64_t deadline);

/**
 * cosync_stream_read - read up to @n bytes (reader.read(n)): what is
 * buffered, or, if nothing is, what one read of the handle brings.
 * Returns the count (0 at the end of the stream, or for @n 0); errors as
 * cosync_stream_readuntil (a NULL @out is COSYNC_EINVAL, even for @n 0).
 * Suspension point (unless bytes are buffered). Not thread-safe.
 */
ssize_t cosync_stream_read(cosync_stream *s, void *out, size_t n, int64_t deadline);

/**
 * cosync_stream_at_eof - whether the stream has ended and nothing is left
 * buffered (reader.at_eof()). Not a suspension point.
 */
bool cosync_stream_at_eof(const cosync_stream *s);

/**
 * cosync_stream_write - write all @len bytes (writer.write(data) followed
 * by await writer.drain(): there is no write buffer), through
 * cosync_sock_sendall on a socket, cosync_io_write_all otherwise.
 * Returns as those.
 * Suspension point. Not thread-safe.
 */
int cosync_stream_write(cosync_stream *s, const void *data, size_t len, size_t *written,
                        int64_t deadline);

/**
 * cosync_stream_destroy - free the stream's buffer (its handle stays
 * open). Destroying a destroyed or zeroed stream does nothing.
 * Returns 0; COSYNC_EBUSY while a task is inside a read of it (nothing
 * changes); COSYNC_EINVAL if @s is NULL. Not a suspension point.
 */
int cosync_stream_destroy(cosync_stream *s);

/* ========================================================================
 * Signals
 * ===================================================================== */

/** The highest signal number cosync_signal_init takes (Linux has 64). */
#define COSYNC_SIGNAL_MAX 64

/** A set of signals a task can wait for, embedded by the caller. Fields
 * are private. */
typedef struct cosync_signal {
    /* private */
    cosync_io io;            /* its signalfd */
    uint64_t set;            /* bit n - 1 for signal n */
    uint64_t blocked_before; /* those of the set the thread had blocked already */
} cosync_signal;

/**
 * cosync_signal_init - from now on, deliver the @n signals of @signals
 * (SIGINT, SIGTERM, ...) to cosync_signal_wait instead of their handlers
 * or default actions (loop.add_signal_handler): they are blocked in the
 * calling thread and read through a signalfd. A signal sent to the
 * process reaches it only while every other thread blocks it too: threads
 * started after this call inherit the mask, and the threads of cosync's
 * pools block every signal; block them in other threads yourself.
 * Returns 0; COSYNC_EINVAL if @sig is NULL, @n is 0 (or @signals NULL),
 * or a number is not a signal (1 to COSYNC_SIGNAL_MAX) or is SIGKILL or
 * SIGSTOP, which cannot be caught; signalfd's negated errno
 * (COSYNC_EMFILE...). On failure nothing changes.
 * Not a suspension point. Not thread-safe.
 */
int cosync_signal_init(cosync_signal *sig, const int *signals, size_t n);

/**
 * cosync_signal_wait - wait for one of @sig's signals and take it (a
 * standard signal sent several times before it is taken counts once, as
 * the kernel keeps one pending instance of it; real-time ones queue).
 * Returns the signal's number (positive); COSYNC_EAGAIN (deadline 0) /
 * COSYNC_ETIMEDOUT; COSYNC_ECANCELED; the returns of cosync_io_wait
 * (COSYNC_EBADF after cosync_signal_destroy).
 * Suspension point (unless a signal is pending). Not thread-safe.
 */
int cosync_signal_wait(cosync_signal *sig, int64_t deadline);

/**
 * cosync_signal_destroy - stop taking @sig's signals: close its signalfd
 * (a task waiting gets COSYNC_EBADF) and unblock, in the calling thread,
 * those of its signals that it had not blocked before
 * (loop.remove_signal_handler). A signal still pending is then delivered
 * as usual (to its handler, or its default action). Sets that share a
 * signal restore the mask only when destroyed in the reverse order of
 * their making: the first made unblocks what it blocked.
 * Returns 0; COSYNC_EINVAL if @sig is NULL; COSYNC_EPERM as
 * cosync_io_close. Not a suspension point. Not thread-safe.
 */
int cosync_signal_destroy(cosync_signal *sig);

/* ========================================================================
 * Subprocesses (asyncio.create_subprocess_exec)
 * ===================================================================== */

/** Where a child's standard stream goes (cosync_process_opts). */
enum cosync_process_stdio {
    COSYNC_PROCESS_INHERIT = 0, /* the parent's own (asyncio's None) */
    COSYNC_PROCESS_PIPE,        /* a pipe to the parent: the process's in, out or err handle */
    COSYNC_PROCESS_DEVNULL,     /* /dev/null (asyncio.subprocess.DEVNULL) */
    COSYNC_PROCESS_STDOUT,      /* stderr only: wherever stdout goes (asyncio.subprocess.STDOUT) */
};

/** Options of cosync_process_spawn; a NULL pointer or a zeroed struct
 * means the defaults: every stream inherited, this process's environment
 * and working directory, no other descriptor. */
typedef struct cosync_process_opts {
    int stdin_mode;    /* enum cosync_process_stdio, but not ..._STDOUT */
    int stdout_mode;   /* enum cosync_process_stdio, but not ..._STDOUT */
    int stderr_mode;   /* enum cosync_process_stdio */
    char *const *envp; /* the child's environment, NULL-terminated; NULL: `environ` */
    const char *cwd;   /* the child's working directory; NULL: the parent's */
    bool new_session;  /* the child calls setsid() (start_new_session=True) */
    /* Descriptors the child keeps under the same numbers, close-on-exec
     * or not (pass_fds); each must be open. Those below 3 are the streams'
     * business and are ignored. */
    const int *pass_fds;
    size_t npass_fds;
    /* The child keeps every descriptor that is not close-on-exec
     * (close_fds=False); by default it gets its three streams and
     * @pass_fds, and nothing else (close_fds=True, asyncio's default). */
    bool inherit_fds;
} cosync_process_opts;

/**
 * cosync_process - a child process (asyncio.subprocess.Process), embedded
 * by the caller and made by cosync_process_spawn.
 *
 * @in, @out and @err are the parent's ends of the pipes asked for with
 * COSYNC_PROCESS_PIPE (closed handles otherwise): write to @in and read
 * from @out and @err with the cosync_io calls, or wrap them in a
 * cosync_stream (proc.stdin, proc.stdout, proc.stderr). A write to @in
 * after the child has closed its end raises SIGPIPE, as for any pipe
 * (docs/io.md), unless the program ignores it; cosync_process_communicate
 * never does. The other fields are private.
 */
typedef struct cosync_process {
    cosync_io in;
    cosync_io out;
    cosync_io err;
    /* private */
    int pid;
    int returncode;
    uint8_t state;        /* running, exited (reaped), destroyed */
    bool watching;        /* a task waits on pidfd (or polls) for the others */
    cosync_io pidfd;      /* readable once the child has exited; closed: poll */
    cosync_event changed; /* set for good at the exit; pulsed when a watcher leaves */
} cosync_process;

/**
 * cosync_process_spawn - start @file with the arguments @argv
 * (asyncio.create_subprocess_exec(file, *argv[1:])).
 * @file: the program; without a '/', looked up in PATH (posix_spawnp).
 * @argv: its arguments, argv[0] first, NULL-terminated.
 * @opts: NULL for the defaults.
 *
 * The child starts with every signal unblocked and SIGPIPE, SIGXFSZ at
 * their default actions, whatever the calling thread blocks or ignores
 * (cosync_signal blocks the signals it takes), as Python's subprocess
 * restores them. It gets its three standard streams and the descriptors
 * of @opts->pass_fds, under the same numbers, and no other descriptor
 * (asyncio's close_fds=True): those of the library are close-on-exec,
 * and the caller's that are not are closed in the child, unless
 * @opts->inherit_fds keeps them (close_fds=False). Its exit is watched through
 * a pidfd (Linux 5.3); where the kernel has none, by polling waitpid, at
 * most 50 ms apart.
 *
 * Returns 0, the process running; COSYNC_EINVAL for a NULL argument, a
 * mode that is not one (COSYNC_PROCESS_STDOUT for stdin or stdout), a
 * negative descriptor in @opts->pass_fds, or @opts->npass_fds without
 * @opts->pass_fds; COSYNC_EBADF if one of @opts->pass_fds is not open;
 * the negated errno of a failed pipe, open or exec (COSYNC_ENOENT for a
 * program not found, COSYNC_EACCES, COSYNC_EMFILE, ...). On failure
 * nothing is left open and no child runs.
 * Not a suspension point. Not thread-safe.
 */
int cosync_process_spawn(cosync_process *p, const char *file, char *const argv[],
                         const cosync_process_opts *opts);

/** cosync_process_pid - the child's process id (Process.pid). */
int cosync_process_pid(const cosync_process *p);

/**
 * cosync_process_wait - wait for the child to exit (Process.wait()), and
 * reap it.
 * @returncode: where to store how it ended (may be NULL): its exit status
 *              (0-255), or -N if signal N killed it, as asyncio's
 *              returncode.
 *
 * Any number of tasks may wait at once; one watches for the exit, and the
 * next takes over if it leaves. A wait ended by a cancel or a deadline
 * leaves the child running (as asyncio's).
 * Returns 0 once the child has exited (at once, if it has been reaped
 * already); COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EPERM outside a task, or from a task of
 * another loop than the one the process's waits are bound to; COSYNC_EBADF
 * after cosync_process_destroy.
 * Suspension point (unless the child has exited). Not thread-safe.
 */
int cosync_process_wait(cosync_process *p, int *returncode, int64_t deadline);

/**
 * cosync_process_returncode - how the child ended, if it has
 * (Process.returncode), reaping it if it has exited since.
 * Returns 0 with *@returncode set; COSYNC_EAGAIN while it runs;
 * COSYNC_EBADF after cosync_process_destroy.
 * Not a suspension point. Not thread-safe.
 */
int cosync_process_returncode(cosync_process *p, int *returncode);

/**
 * cosync_process_send_signal - send @sig to the child
 * (Process.send_signal()); cosync_process_terminate sends SIGTERM and
 * cosync_process_kill SIGKILL.
 * Returns 0; COSYNC_ESRCH if the child has exited and been reaped
 * (asyncio's ProcessLookupError); COSYNC_EINVAL for an invalid @sig;
 * COSYNC_EBADF after cosync_process_destroy.
 * Not a suspension point. Not thread-safe.
 */
int cosync_process_send_signal(cosync_process *p, int sig);
int cosync_process_terminate(cosync_process *p);
int cosync_process_kill(cosync_process *p);

/** Where cosync_process_communicate keeps what the child writes to one
 * stream: up to @cap bytes in @buf (NULL and 0 to discard it all); @len
 * is set to the count the child wrote in all, which may be more than
 * @cap (snprintf's rule: the rest was read and dropped). */
typedef struct cosync_process_output {
    char *buf;
    size_t cap;
    size_t len;
} cosync_process_output;

/**
 * cosync_process_communicate - send @input to the child's stdin and close
 * it, read its stdout and stderr to their end, and wait for it to exit
 * (Process.communicate()).
 * @input, @input_len: written if stdin is a pipe (NULL, 0: just close it);
 *              a child that exits without reading it all is not an error
 *              (the write's EPIPE is dropped, and no SIGPIPE is raised).
 * @out, @err: where stdout's and stderr's bytes go, if they are pipes
 *              (may be NULL: the bytes are read and dropped).
 * @returncode: as for cosync_process_wait (may be NULL).
 *
 * The three streams are served at once, each by a task of a task group
 * in this call's frame, so a child that fills one pipe while the parent
 * writes to another cannot deadlock; a dense task (which cannot keep a
 * task group in its stack) gets COSYNC_EINVAL. A cancel or the deadline
 * stops the transfers (what came so far is kept, and counted in len) and
 * leaves the child running, as asyncio's does.
 * Returns 0; COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_ENOMEM if a task
 * could not be spawned; the negated errno of a failed read or write;
 * the returns of cosync_process_wait.
 * Suspension point. Not thread-safe.
 */
int cosync_process_communicate(cosync_process *p, const void *input, size_t input_len,
                               cosync_process_output *out, cosync_process_output *err,
                               int *returncode, int64_t deadline);

/**
 * cosync_process_destroy - close the parent's pipe ends and the pidfd. A
 * child still running is killed (SIGKILL) and reaped, as asyncio's
 * transport kills it at its close: no zombie is left.
 * Returns 0; COSYNC_EBUSY (nothing changes) while a task waits on the
 * process or on one of its pipes; COSYNC_EBADF if destroyed already.
 * Not a suspension point (a killed child is reaped with a blocking
 * waitpid, which SIGKILL makes short). Not thread-safe.
 */
int cosync_process_destroy(cosync_process *p);

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_IO_H */
