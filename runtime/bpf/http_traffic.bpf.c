// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0
// (GPL-compatible for the kernel: bpf_probe_read_user is a GPL-only helper.)
// HTTP request and response counters per process, from tracepoints.
//
// Requests are counted when a process reads a request line ("GET ", "POST ",
// ...) with read(2), readv(2), recvfrom(2) or recvmsg(2); responses when it
// writes a status line ("HTTP/1.x NNN") with write(2), writev(2), sendto(2) or
// sendmsg(2). Only the first bytes of each buffer (of a vector: of its first
// element) are looked at: one request per read, plain-text HTTP/1.x only.
//
// Three sets of programs, the daemon attaches one (the first that loads):
// - on x86-64, one raw tracepoint program on each socket tracepoint
//   (sock:sock_recv_length, sock:sock_send_length; Linux 6.3+), where every
//   socket receive and send ends: nothing else pays, and the syscall that led
//   there is read from the task's saved user registers;
// - on x86-64, one program on each of the raw tracepoints every syscall passes
//   (raw_syscalls:sys_enter/sys_exit), filtering by syscall number: a read is
//   looked at once, at its exit, with its arguments still in the user
//   registers, so no map carries it from entry to exit;
// - elsewhere (or when chosen), programs on the tracepoints of the eight
//   syscalls themselves (syscalls:sys_enter_read, ...), keeping a read's
//   buffer from its entry to its exit.
//
// No kernel headers: the programs read only kernel ABI (the tracepoints'
// context, which the daemon checks against tracefs' `format` files before
// loading, and x86-64's user registers and syscall numbers), so the object is
// built once and runs on any kernel; the socket and raw tracepoint programs
// need the kernel's BTF (for the typed pointer to the task's registers).

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef int __s32;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PERCPU_HASH = 5,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_LRU_HASH = 9,
    BPF_ANY = 0,
    BPF_NOEXIST = 1
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)112;

// `syscalls:sys_enter_*` and `syscalls:sys_exit_*` contexts.
struct sys_enter {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    __u64 args[6];
};

struct sys_exit {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    __s64 ret;
};

// kind: what `code` means.
#define KIND_REQUEST 0  // code: index of the method in METHODS (userspace holds the same list)
#define KIND_RESPONSE 1 // code: the HTTP status code

struct counter_key {
    __u32 tgid;
    __u16 kind;
    __u16 code;
};

// Bounded: when full, new processes are not counted (userspace drops exited
// ones). One counter per CPU, summed by userspace: CPUs counting the same
// server never share a cache line. Counters the slots below cannot hold.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct counter_key);
    __type(value, __u64);
} HTTP_COUNTERS SEC(".maps");

// A counter in COUNTER_SLOTS: its key (all zero: free) and count.
struct counter_slot {
    struct counter_key key;
    __u64 count;
};

#define COUNTER_SLOTS_SIZE 1024

// Most counters, in per-CPU slots indexed by a hash of their key: an array
// lookup is a few instructions the verifier inlines, where a hash map's
// lookup costs 50 ns here (docs/benchmarks.md). A slot is taken by the first
// key that lands on it and keeps it; a key whose slot another holds goes to
// HTTP_COUNTERS. Userspace adds both up.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, COUNTER_SLOTS_SIZE);
    __type(key, __u32);
    __type(value, struct counter_slot);
} COUNTER_SLOTS SEC(".maps");

struct read_in_flight {
    __u64 buf;
    __u64 fd;
};

// The buffer of each thread's read in flight, from enter to exit (tracepoints only).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct read_in_flight);
} READS_IN_FLIGHT SEC(".maps");

// A request's first byte read on its own, by (tgid << 32 | fd): Go's net/http
// reads one byte ahead while a handler runs, and when the next request comes
// then, its line starts in that byte and goes on in the next read. Least
// recently used entries go when it is full.
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, __u64);
} FIRST_BYTES SEC(".maps");

static __attribute__((always_inline)) __u64 packed(struct counter_key key)
{
    return (__u64)key.tgid | (__u64)key.kind << 32 | (__u64)key.code << 48;
}

static __attribute__((always_inline)) void count(__u32 tgid, __u16 kind, __u16 code)
{
    struct counter_key key = { .tgid = tgid, .kind = kind, .code = code };
    __u64 wanted = packed(key);
    __u32 index = (tgid * 2654435761u ^ (__u32)code * 40503u ^ kind) % COUNTER_SLOTS_SIZE;
    struct counter_slot *slot = bpf_map_lookup_elem(&COUNTER_SLOTS, &index);
    if (slot) {
        __u64 *held = (__u64 *)&slot->key;
        // A program preempted on this CPU may take the free slot in between: compare and swap.
        if (*held == wanted || (*held == 0 && __sync_val_compare_and_swap(held, 0, wanted) == 0)) {
            __sync_fetch_and_add(&slot->count, 1);
            return;
        }
    }
    __u64 *value = bpf_map_lookup_elem(&HTTP_COUNTERS, &key);
    if (value) {
        __sync_fetch_and_add(value, 1);
        return;
    }
    __u64 one = 1;
    if (bpf_map_update_elem(&HTTP_COUNTERS, &key, &one, BPF_NOEXIST) != 0) {
        // Created in between (by a program that preempted this one).
        value = bpf_map_lookup_elem(&HTTP_COUNTERS, &key);
        if (value)
            __sync_fetch_and_add(value, 1);
    }
}

// The index of the request method that `b` starts with (with its space), or -1.
static __attribute__((always_inline)) int request_method(const __u8 *b)
{
    if (b[0] == 'G' && b[1] == 'E' && b[2] == 'T' && b[3] == ' ')
        return 0;
    if (b[0] == 'P' && b[1] == 'O' && b[2] == 'S' && b[3] == 'T' && b[4] == ' ')
        return 1;
    if (b[0] == 'P' && b[1] == 'U' && b[2] == 'T' && b[3] == ' ')
        return 2;
    if (b[0] == 'D' && b[1] == 'E' && b[2] == 'L' && b[3] == 'E' && b[4] == 'T' && b[5] == 'E' && b[6] == ' ')
        return 3;
    if (b[0] == 'H' && b[1] == 'E' && b[2] == 'A' && b[3] == 'D' && b[4] == ' ')
        return 4;
    if (b[0] == 'P' && b[1] == 'A' && b[2] == 'T' && b[3] == 'C' && b[4] == 'H' && b[5] == ' ')
        return 5;
    if (b[0] == 'O' && b[1] == 'P' && b[2] == 'T' && b[3] == 'I' && b[4] == 'O' && b[5] == 'N' && b[6] == 'S' &&
        b[7] == ' ')
        return 6;
    return -1;
}

static __attribute__((always_inline)) int digit(__u8 c)
{
    return c >= '0' && c <= '9' ? c - '0' : -1;
}

// `struct iovec` and the start of `struct user_msghdr`, as the syscall ABI has them.
struct iovec {
    __u64 base;
    __u64 len;
};

struct msghdr_head {
    __u64 name;
    __u64 namelen; // an int, padded
    __u64 iov;
    __u64 iovlen;
};

// The first element of the vector at `iov` (of `count` elements), or a zero one.
static __attribute__((always_inline)) struct iovec first_iovec(__u64 iov, __u64 count)
{
    struct iovec first = {};
    if (count == 0 || bpf_probe_read_user(&first, sizeof(first), (const void *)iov) != 0)
        first.len = 0;
    return first;
}

// The first element of the vector a `struct user_msghdr` points to.
static __attribute__((always_inline)) struct iovec first_iovec_of_msg(__u64 msg)
{
    struct msghdr_head head = {};
    if (bpf_probe_read_user(&head, sizeof(head), (const void *)msg) != 0) {
        struct iovec none = {};
        return none;
    }
    return first_iovec(head.iov, head.iovlen);
}

static __attribute__((always_inline)) int remember_read(__u64 fd, __u64 buf)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct read_in_flight read = { .buf = buf, .fd = fd };
    bpf_map_update_elem(&READS_IN_FLIGHT, &id, &read, BPF_ANY);
    return 0;
}

static __attribute__((always_inline)) int on_read_enter(struct sys_enter *ctx)
{
    return remember_read(ctx->args[0], ctx->args[1]);
}

// A vector's first element holds the first bytes read; one shorter than the
// shortest request line cannot hold one.
static __attribute__((always_inline)) int on_readv_enter(struct sys_enter *ctx)
{
    struct iovec first = first_iovec(ctx->args[1], ctx->args[2]);
    return first.len < 16 ? 0 : remember_read(ctx->args[0], first.base);
}

static __attribute__((always_inline)) int on_recvmsg_enter(struct sys_enter *ctx)
{
    struct iovec first = first_iovec_of_msg(ctx->args[1]);
    return first.len < 16 ? 0 : remember_read(ctx->args[0], first.base);
}

// Whether `b` may go on from a method's first letter: the second letter of
// one (GET, DELETE and HEAD share E).
static __attribute__((always_inline)) int second_letter(__u8 b)
{
    return b == 'E' || b == 'O' || b == 'U' || b == 'A' || b == 'P';
}

// Counts the request whose line the `ret` bytes read into `buf` from `fd`
// start (with the byte read before them, Go's read-ahead).
static __attribute__((always_inline)) int count_request(__u64 id, __u64 fd, __u64 buf, __s64 ret)
{
    __u64 fd_key = (id & 0xffffffff00000000ULL) | (fd & 0xffffffff);
    if (ret == 1) {
        __u64 first = 0;
        if (bpf_probe_read_user(&first, 1, (const void *)buf) != 0)
            return 0;
        if (first == 'G' || first == 'P' || first == 'D' || first == 'H' || first == 'O')
            bpf_map_update_elem(&FIRST_BYTES, &fd_key, &first, BPF_ANY);
        return 0;
    }
    // The shortest request line, "GET / HTTP/1.0\r\n", is 16 bytes (15 after its first).
    if (ret < 15)
        return 0;
    __u8 head[8] = {};
    if (bpf_probe_read_user(head, sizeof(head), (const void *)buf) != 0)
        return 0;
    int method = ret >= 16 ? request_method(head) : -1;
    if (method < 0 && second_letter(head[0])) {
        __u64 *first = bpf_map_lookup_elem(&FIRST_BYTES, &fd_key);
        if (first) {
            __u8 joined[8] = { (__u8)*first, head[0], head[1], head[2], head[3], head[4], head[5], head[6] };
            bpf_map_delete_elem(&FIRST_BYTES, &fd_key);
            method = request_method(joined);
        }
    }
    if (method >= 0)
        count(id >> 32, KIND_REQUEST, method);
    return 0;
}

static __attribute__((always_inline)) int on_read_exit(struct sys_exit *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct read_in_flight *in_flight = bpf_map_lookup_elem(&READS_IN_FLIGHT, &id);
    if (!in_flight)
        return 0;
    __u64 buf = in_flight->buf, fd = in_flight->fd;
    bpf_map_delete_elem(&READS_IN_FLIGHT, &id);
    return count_request(id, fd, buf, ctx->ret);
}

// Counts the response whose status line `buf` (of `len` bytes) starts with.
static __attribute__((always_inline)) int count_response(__u64 buf, __u64 len)
{
    // "HTTP/1.1 200" is 12 bytes.
    if (len < 12)
        return 0;
    __u8 head[12] = {};
    if (bpf_probe_read_user(head, sizeof(head), (const void *)buf) != 0)
        return 0;
    if (head[0] != 'H' || head[1] != 'T' || head[2] != 'T' || head[3] != 'P' || head[4] != '/' || head[5] != '1' ||
        head[6] != '.' || head[8] != ' ')
        return 0;
    int hundreds = digit(head[9]), tens = digit(head[10]), ones = digit(head[11]);
    if (hundreds < 1 || hundreds > 5 || tens < 0 || ones < 0)
        return 0;
    count(bpf_get_current_pid_tgid() >> 32, KIND_RESPONSE, hundreds * 100 + tens * 10 + ones);
    return 0;
}

static __attribute__((always_inline)) int on_write_enter(struct sys_enter *ctx)
{
    return count_response(ctx->args[1], ctx->args[2]);
}

// Servers write headers and body as one vector (nginx, Go, Node): the status
// line starts its first element.
static __attribute__((always_inline)) int on_writev_enter(struct sys_enter *ctx)
{
    struct iovec first = first_iovec(ctx->args[1], ctx->args[2]);
    return count_response(first.base, first.len);
}

static __attribute__((always_inline)) int on_sendmsg_enter(struct sys_enter *ctx)
{
    struct iovec first = first_iovec_of_msg(ctx->args[1]);
    return count_response(first.base, first.len);
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct sys_enter *ctx) { return on_read_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct sys_enter *ctx) { return on_read_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct sys_enter *ctx) { return on_readv_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct sys_enter *ctx) { return on_recvmsg_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct sys_enter *ctx) { return on_write_enter(ctx); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter *ctx) { return on_write_enter(ctx); }

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct sys_enter *ctx) { return on_writev_enter(ctx); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct sys_enter *ctx) { return on_sendmsg_enter(ctx); }

// raw_syscalls:sys_enter and sys_exit (x86-64): every syscall passes, with
// the user registers (`struct pt_regs *`) and the syscall's number (enter) or
// result (exit). The syscall's arguments stay in those registers to its exit
// (di, si, dx; the number in orig_ax), so a read is looked at once, at its
// exit, and no map carries it from entry to exit.
struct raw_syscall_args {
    __u64 regs;
    __s64 nr_or_ret;
};

// x86-64 syscall numbers.
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

// dx, si, di and orig_ax: x86-64's `struct pt_regs` words 12 to 15 (from byte 96).
struct syscall_regs {
    __u64 dx;
    __u64 si;
    __u64 di;
    __u64 orig_ax;
};

static void *(*bpf_get_current_task_btf)(void) = (void *)158;
static void *(*bpf_task_pt_regs)(void *task) = (void *)175;

// The current task's saved user registers. The helpers hand a pointer the
// verifier knows the kernel type of (`struct pt_regs`), so these are plain
// loads (checked against the kernel's BTF at load time), not a
// bpf_probe_read_kernel call, which cost 60 ns here.
static __attribute__((always_inline)) void current_regs(struct syscall_regs *out)
{
    const volatile __u64 *regs = bpf_task_pt_regs(bpf_get_current_task_btf());
    out->dx = regs[12];
    out->si = regs[13];
    out->di = regs[14];
    out->orig_ax = regs[15];
}

// Counts the response that the current write syscall `nr` (any other: none)
// starts with, from its arguments in `regs`.
static __attribute__((always_inline)) int count_write_syscall(__u64 nr, struct syscall_regs *regs)
{
    if (nr == NR_WRITE || nr == NR_SENDTO)
        return count_response(regs->si, regs->dx);
    if (nr != NR_WRITEV && nr != NR_SENDMSG)
        return 0;
    struct iovec first = nr == NR_WRITEV ? first_iovec(regs->si, regs->dx) : first_iovec_of_msg(regs->si);
    return count_response(first.base, first.len);
}

// Counts the request that the current task's read syscall (any other: none),
// which returned `ret`, read.
static __attribute__((always_inline)) int count_read_syscall(__s64 ret)
{
    struct syscall_regs regs;
    current_regs(&regs);
    __u64 nr = regs.orig_ax, buf;
    if (nr == NR_READ || nr == NR_RECVFROM) {
        buf = regs.si;
    } else if (nr == NR_READV || nr == NR_RECVMSG) {
        struct iovec first = nr == NR_READV ? first_iovec(regs.si, regs.dx) : first_iovec_of_msg(regs.si);
        if (first.len < 16)
            return 0;
        buf = first.base;
    } else {
        return 0;
    }
    return count_request(bpf_get_current_pid_tgid(), regs.di, buf, ret);
}

SEC("raw_tracepoint/sys_enter")
int raw_sys_enter(struct raw_syscall_args *ctx)
{
    __s64 nr = ctx->nr_or_ret;
    if (nr != NR_WRITE && nr != NR_WRITEV && nr != NR_SENDTO && nr != NR_SENDMSG)
        return 0;
    struct syscall_regs regs;
    current_regs(&regs);
    return count_write_syscall(nr, &regs);
}

SEC("raw_tracepoint/sys_exit")
int raw_sys_exit(struct raw_syscall_args *ctx)
{
    __s64 ret = ctx->nr_or_ret;
    // A result that cannot be a request read (nor Go's one byte): most
    // syscalls' end here, before any memory is read.
    if (ret != 1 && ret < 15)
        return 0;
    return count_read_syscall(ret);
}

// sock:sock_recv_length and sock:sock_send_length, at the end of every socket
// receive and send (sock_recvmsg/sock_sendmsg, whichever syscall led there),
// so no other syscall and no file I/O pays anything, and a file descriptor
// that is not a socket never gets here. The programs are raw tracepoint
// programs there: they get the tracepoint's arguments as they are, where an
// ordinary tracepoint program first has the kernel fill its trace record
// (which alone cost 3.5 % of a loopback request, docs/benchmarks.md). The
// syscall's own arguments are in the task's saved user registers, read as on
// the raw syscall tracepoints; a socket call that did not come from one of the
// eight syscalls (io_uring, sendfile, the kernel's own) is left alone.
//
// The arguments, `TP_PROTO(struct sock *sk, int ret, int flags)`, each widened
// to 64 bits (the daemon checks tracefs' record of the same event first).
struct sock_length_args {
    __u64 sk;
    __u64 ret;
    __u64 flags;
};

#define MSG_PEEK 2

// TCP connections this host opened (the connecting side), by their socket's
// address in one of CLIENT_SOCKETS_SIZE slots (a hash of it): all zero when
// free. What such a socket receives is a response and what it sends is a
// request, so its receives and sends are left alone before anything is read
// (half of a client and server's socket calls: docs/benchmarks.md). A
// connection whose slot another holds, or that was opened before the programs
// were attached, is looked at as any other.
#define CLIENT_SOCKETS_SIZE 4096

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CLIENT_SOCKETS_SIZE);
    __type(key, __u32);
    __type(value, __u64);
} CLIENT_SOCKETS SEC(".maps");

static __attribute__((always_inline)) __u64 *client_socket_slot(__u64 sk)
{
    __u32 index = (sk * 0x9E3779B97F4A7C15ULL) >> 52; // 12 bits: CLIENT_SOCKETS_SIZE
    return bpf_map_lookup_elem(&CLIENT_SOCKETS, &index);
}

static __attribute__((always_inline)) int is_client_socket(__u64 sk)
{
    __u64 *slot = client_socket_slot(sk);
    return slot && *slot == sk;
}

// TCP's states, as the kernel numbers them.
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7

// sock:inet_sock_set_state, `TP_PROTO(const struct sock *sk, int oldstate,
// int newstate)`: a connection this host opened is established (its socket
// goes in CLIENT_SOCKETS) or any connection closes (its socket leaves it, so
// a new socket at the same address is not taken for it). Every TCP state
// change passes here; connecting and closing are the only ones that do work.
struct set_state_args {
    __u64 sk;
    __u64 oldstate;
    __u64 newstate;
};

SEC("raw_tracepoint/inet_sock_set_state")
int sock_set_state(struct set_state_args *ctx)
{
    __s32 oldstate = ctx->oldstate, newstate = ctx->newstate;
    __u64 sk = ctx->sk;
    if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
        __u64 *slot = client_socket_slot(sk);
        if (slot)
            __sync_val_compare_and_swap(slot, 0, sk);
    } else if (newstate == TCP_CLOSE) {
        __u64 *slot = client_socket_slot(sk);
        if (slot)
            __sync_val_compare_and_swap(slot, sk, 0);
    }
    return 0;
}

SEC("raw_tracepoint/sock_recv_length")
int sock_recv(struct sock_length_args *ctx)
{
    __s64 ret = (__s32)ctx->ret;
    // A peek is read again; a result that cannot be a request read (nor Go's one byte).
    if ((ctx->flags & MSG_PEEK) || (ret != 1 && ret < 15) || is_client_socket(ctx->sk))
        return 0;
    return count_read_syscall(ret);
}

SEC("raw_tracepoint/sock_send_length")
int sock_send(struct sock_length_args *ctx)
{
    if ((__s32)ctx->ret < 12 || is_client_socket(ctx->sk))
        return 0;
    struct syscall_regs regs;
    current_regs(&regs);
    return count_write_syscall(regs.orig_ax, &regs);
}

// Nothing but the attachment: what the kernel itself costs once any program
// is on these tracepoints (on the raw ones: every syscall), the floor the cost
// benchmark (tests/bench/http_overhead.rs) measures beside the programs above.
// The daemon never attaches these.
SEC("raw_tracepoint/sys_enter")
int floor_sys_enter(struct raw_syscall_args *ctx) { return 0; }

SEC("raw_tracepoint/sys_exit")
int floor_sys_exit(struct raw_syscall_args *ctx) { return 0; }

SEC("raw_tracepoint/sock_recv_length")
int floor_sock_recv(struct sock_length_args *ctx) { return 0; }

SEC("raw_tracepoint/sock_send_length")
int floor_sock_send(struct sock_length_args *ctx) { return 0; }

SEC("raw_tracepoint/inet_sock_set_state")
int floor_set_state(struct set_state_args *ctx) { return 0; }

char LICENSE[] SEC("license") = "Dual MIT/GPL";
