// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0
// (GPL-compatible for the kernel: bpf_probe_read_user is a GPL-only helper.)
// HTTP request and response counters per process, from syscall tracepoints.
//
// Requests are counted when a process reads a request line ("GET ", "POST ",
// ...) with read(2) or recvfrom(2); responses when it writes a status line
// ("HTTP/1.x NNN") with write(2) or sendto(2). Only the first bytes of each
// buffer are looked at, so this sees what the original scope-http-statistics
// saw: one request per read, plain-text HTTP/1.x only.
//
// No kernel headers: the programs read only the syscall tracepoints' context,
// whose layout is kernel ABI (the daemon checks it against tracefs' `format`
// files before loading), so the object is built once and runs on any kernel.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef int __s32;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum { BPF_MAP_TYPE_HASH = 1, BPF_ANY = 0, BPF_NOEXIST = 1 };

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

// Bounded: when full, new processes are not counted (userspace drops exited ones).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct counter_key);
    __type(value, __u64);
} HTTP_COUNTERS SEC(".maps");

// The buffer of each thread's read in flight, from enter to exit.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, __u64);
} READS_IN_FLIGHT SEC(".maps");

static __attribute__((always_inline)) void count(__u32 tgid, __u16 kind, __u16 code)
{
    struct counter_key key = { .tgid = tgid, .kind = kind, .code = code };
    __u64 *value = bpf_map_lookup_elem(&HTTP_COUNTERS, &key);
    if (value) {
        __sync_fetch_and_add(value, 1);
        return;
    }
    __u64 one = 1;
    if (bpf_map_update_elem(&HTTP_COUNTERS, &key, &one, BPF_NOEXIST) != 0) {
        // Another CPU created it first.
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

static __attribute__((always_inline)) int on_read_enter(struct sys_enter *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u64 buf = ctx->args[1];
    bpf_map_update_elem(&READS_IN_FLIGHT, &id, &buf, BPF_ANY);
    return 0;
}

static __attribute__((always_inline)) int on_read_exit(struct sys_exit *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u64 *buf = bpf_map_lookup_elem(&READS_IN_FLIGHT, &id);
    if (!buf)
        return 0;
    const void *user_buf = (const void *)*buf;
    bpf_map_delete_elem(&READS_IN_FLIGHT, &id);
    // The shortest request line, "GET / HTTP/1.0\r\n", is 16 bytes.
    if (ctx->ret < 16)
        return 0;
    __u8 head[8] = {};
    if (bpf_probe_read_user(head, sizeof(head), user_buf) != 0)
        return 0;
    int method = request_method(head);
    if (method >= 0)
        count(id >> 32, KIND_REQUEST, method);
    return 0;
}

static __attribute__((always_inline)) int on_write_enter(struct sys_enter *ctx)
{
    // "HTTP/1.1 200" is 12 bytes.
    if (ctx->args[2] < 12)
        return 0;
    __u8 head[12] = {};
    if (bpf_probe_read_user(head, sizeof(head), (const void *)ctx->args[1]) != 0)
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

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct sys_enter *ctx) { return on_read_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct sys_enter *ctx) { return on_read_enter(ctx); }

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct sys_exit *ctx) { return on_read_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct sys_enter *ctx) { return on_write_enter(ctx); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter *ctx) { return on_write_enter(ctx); }

char LICENSE[] SEC("license") = "Dual MIT/GPL";
