// SPDX-License-Identifier: GPL-2.0-only OR MIT
#include "unit.h"
#include "../../common/rm_platform.h"

UNIT_TEST(crc32c_known_vector)
{
	/* RFC 3720 B.4: CRC32C("123456789") = 0xE3069283 (with inversion). */
	CHECK_EQ(~rm_crc32c(~0u, "123456789", 9), 0xE3069283u);
	CHECK_EQ(rm_crc32c(0, "", 0), 0);
}

UNIT_TEST(crc32c_incremental)
{
	uint32_t a = rm_crc32c(~0u, "1234", 4);

	CHECK_EQ(rm_crc32c(a, "56789", 5), rm_crc32c(~0u, "123456789", 9));
}
