/* Preloaded into `hookline serve` by test_serving's StopWhileConnecting (LD_PRELOAD): the main
 * thread's EPOLL_CTL_DEL calls wait 20 ms before they run; everything else passes straight on.
 * It widens a race to be seen: the stop used to call MHD_quiesce_daemon from the main thread,
 * which takes the listening socket out of each pool thread's epoll set while that thread may be
 * taking it out itself, and libmicrohttpd aborts the process when the main thread finds it gone
 * (ENOENT). A line on stderr at load says the library is in. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((constructor)) static void loaded(void)
{
    fputs("slow_epoll_del: loaded\n", stderr);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        real = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && syscall(SYS_gettid) == getpid()) {
        struct timespec wait = {0, 20 * 1000 * 1000};
        nanosleep(&wait, NULL);
    }
    return real(epfd, op, fd, ev);
}
