// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BIPS_API marks the exported C API. The library is built
// with hidden visibility, so only what carries this mark is exported (not
// the C++ internals of the facade nor libbips linked into it).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define BIPS_API __attribute__((visibility("default"))) extern
#else
#define BIPS_API extern
#endif
