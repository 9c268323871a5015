// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: umbrella header of the core library (producer, consumer, channels).
#pragma once

#include <bips/channel.h>
#include <bips/consumer.h>
#include <bips/framemeta.h>
#include <bips/producer.h>
#include <bips/result.h>
#include <bips/version.h>
