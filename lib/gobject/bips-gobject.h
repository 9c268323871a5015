// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: umbrella header of the Bips-1.0 C API.
#pragma once

#include "bips-consumer.h"
#include "bips-frame.h"
#include "bips-producer.h"
#include "bips-slot.h"
#include "bips-types.h"
