/*
 * cosync/curl.h - HTTP (and every other protocol of libcurl) for tasks: a
 * task performs a libcurl easy handle and waits for its end while the
 * loop's other tasks run, as an asyncio program awaits an HTTP client.
 *
 * Optional: built as the library cosync_curl when libcurl's development
 * files are found (Debian: libcurl4-openssl-dev). Include <cosync.h>
 * first; link cosync_curl and libcurl. docs/io.md ("HTTP with libcurl")
 * is the guide.
 *
 * Each loop drives its transfers with one libcurl multi handle of its
 * own, through libcurl's socket interface: the loop's epoll watches the
 * transfers' sockets and its timer heap keeps libcurl's timeout, so a
 * thousand transfers cost no thread and no poll of their own. libcurl
 * calls the easy handle's callbacks (CURLOPT_WRITEFUNCTION, ...) on the
 * loop's thread, outside any task: they must not block, and cannot
 * suspend (a blocking cosync call there returns COSYNC_EPERM). Call
 * curl_global_init() once at the start of the program, as libcurl asks.
 */
#ifndef COSYNC_CURL_H
#define COSYNC_CURL_H

#ifndef COSYNC_H
#error "include <cosync.h> before <cosync/curl.h>"
#endif

#include <curl/curl.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * cosync_curl_perform - run the transfer that @easy is set up for
 * (curl_easy_perform, without blocking the loop) and wait for its end.
 * @easy:   a libcurl easy handle with its options set; not being performed
 *          elsewhere.
 * @result: receives libcurl's outcome of the transfer (CURLE_OK, or
 *          CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT for libcurl's own
 *          CURLOPT_TIMEOUT, ...) when the call returns 0; may be NULL.
 * @deadline: absolute time on the loop's clock, COSYNC_FOREVER, or 0 (the
 *          try form: a transfer cannot end at once, so COSYNC_EAGAIN).
 *
 * A cancel or the deadline stops the transfer (it is taken off the loop's
 * multi handle, as curl_multi_remove_handle does; what the callbacks
 * received so far stays received), and @easy is the caller's again, to
 * perform again or to clean up.
 *
 * Returns 0 once the transfer has ended, whatever libcurl's outcome (see
 * @result); COSYNC_EAGAIN (deadline 0); COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EINVAL if @easy is NULL; COSYNC_EBUSY if @easy
 * is being performed already (by this loop); COSYNC_EPERM outside a task;
 * COSYNC_ENOMEM if the loop's driver or a transfer's record cannot be
 * had, or libcurl refuses the handle (CURLM_OUT_OF_MEMORY, or any other
 * failure of curl_multi_add_handle).
 * Suspension point. Not thread-safe (call it from a task of the loop).
 */
int cosync_curl_perform(CURL *easy, CURLcode *result, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_CURL_H */
