// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: the entry point of each command.
#pragma once

#include <string_view>
#include <vector>

namespace bips::tool {

// Each takes the words after the command name and returns the exit code
// (kExitOk, kExitRuntime or kExitUsage from cli.h).
int cmd_list(const std::vector<std::string_view> &argv);
int cmd_info(const std::vector<std::string_view> &argv);
int cmd_clean(const std::vector<std::string_view> &argv);
int cmd_top(const std::vector<std::string_view> &argv);
int cmd_bench(const std::vector<std::string_view> &argv);
int cmd_demo(const std::vector<std::string_view> &argv);

} // namespace bips::tool
