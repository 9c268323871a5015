// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: BIPS_EXPORT marks the public API of libbips. The library is built
// with hidden visibility, so only what carries this mark is exported
// (bips::detail and the library's internals are not).
#pragma once

// BIPS_NO_EXPORT keeps a member of an exported class (one that only the
// library calls, e.g. a constructor taking a bips::detail type) out of it.
#if defined(__GNUC__) || defined(__clang__)
#define BIPS_EXPORT __attribute__((visibility("default")))
#define BIPS_NO_EXPORT __attribute__((visibility("hidden")))
#else
#define BIPS_EXPORT
#define BIPS_NO_EXPORT
#endif
