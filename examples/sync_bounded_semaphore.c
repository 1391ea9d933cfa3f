/*
 * sync_bounded_semaphore.c - seed 003, "Asyncio BoundedSemaphore:
 * Preventing Misuse".
 *
 *     semaphore = asyncio.BoundedSemaphore(2)
 *     await semaphore.acquire(); await semaphore.acquire()
 *     semaphore.release(); semaphore.release()
 *     try:
 *         semaphore.release()  # this would exceed the initial value
 *         print("This should not be printed")
 *     except ValueError as e:
 *         print(f"Error: {e}")
 *
 * ValueError is the return code COSYNC_EOVERFLOW, and the semaphore is
 * left unchanged. Exits 1 unless the third release fails that way.
 */
#include <cosync.h>

#include <stdio.h>

static int main_task(void *arg, void **result)
{
    cosync_sem semaphore; /* used by this task only: its stack is fine */
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_bsem_init(&semaphore, 2)) != 0) /* initial value 2 */
        return rc;

    /* acquire twice (allowed) */
    if ((rc = cosync_sem_acquire(&semaphore, COSYNC_FOREVER)) != 0 ||
        (rc = cosync_sem_acquire(&semaphore, COSYNC_FOREVER)) != 0)
        return rc;
    /* release twice (allowed) */
    if ((rc = cosync_sem_release(&semaphore)) != 0 || (rc = cosync_sem_release(&semaphore)) != 0)
        return rc;

    rc = cosync_sem_release(&semaphore); /* this would exceed the initial value */
    if (rc == 0) {
        printf("This should not be printed\n");
        return COSYNC_EINVAL;
    }
    printf("Error: BoundedSemaphore released too many times (%s)\n", cosync_err_name(rc));
    if (rc != COSYNC_EOVERFLOW)
        return rc;
    return cosync_sem_destroy(&semaphore);
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_bounded_semaphore: %s\n", cosync_strerror(rc));
        return 1;
    }
    return 0;
}
