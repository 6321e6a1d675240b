/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * rm_platform.h - the only place where common/ learns which side it runs on.
 *
 * Everything else in common/ is plain C that uses the fixed-width types,
 * memcpy/memset and rm_crc32c() declared here.  In the kernel the types and
 * string functions come from the kernel and CRC32C from lib/libcrc32c; in user
 * space from the C library and a portable table implementation in crc32c.c.
 */
#ifndef RM_PLATFORM_H
#define RM_PLATFORM_H

/*
 * Memory ordering for structures read without locks (the remap index):
 *   RM_LOAD_ACQUIRE(p)      load *p; later loads are not reordered before it
 *   RM_STORE_RELEASE(p, v)  store v; earlier stores are visible before it
 *   RM_READ_ONCE(x), RM_WRITE_ONCE(x, v)  single, untorn access
 *
 * RM_YIELD(i) in a loop over millions of items (i the counter): in the
 * kernel, a scheduling point every 65536 iterations, for callers that may
 * sleep (the pool check runs in resume_spare, under a mutex at most).
 */
#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#include <linux/crc32c.h>
#include <linux/sched.h>
#include <asm/barrier.h>

static inline uint32_t rm_crc32c(uint32_t seed, const void *buf, size_t len)
{
	return crc32c(seed, buf, len);
}

/* Acquire: pairs with RM_STORE_RELEASE() of the same location. */
#define RM_LOAD_ACQUIRE(p)		smp_load_acquire(p)
/* Release: pairs with RM_LOAD_ACQUIRE() of the same location. */
#define RM_STORE_RELEASE(p, v)		smp_store_release(p, v)
#define RM_READ_ONCE(x)			READ_ONCE(x)
#define RM_WRITE_ONCE(x, v)		WRITE_ONCE(x, v)
#define RM_YIELD(i)	do { if (!((i) & 0xffff)) cond_resched(); } while (0)
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint32_t rm_crc32c(uint32_t seed, const void *buf, size_t len);

#define RM_LOAD_ACQUIRE(p)		__atomic_load_n(p, __ATOMIC_ACQUIRE)
#define RM_STORE_RELEASE(p, v)		__atomic_store_n(p, v, __ATOMIC_RELEASE)
#define RM_READ_ONCE(x)			__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define RM_WRITE_ONCE(x, v)		__atomic_store_n(&(x), v, __ATOMIC_RELAXED)
#define RM_YIELD(i)			((void)(i))
#endif

#endif /* RM_PLATFORM_H */
