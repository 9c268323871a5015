// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: a small JSON writer for --json output (always valid JSON, pure
// ASCII: every byte string is escaped, invalid UTF-8 included).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace bips::tool {

// `bytes` as the body of a JSON string (without the quotes), in ASCII only:
// quotes, backslashes and control characters are escaped, other non-ASCII
// text becomes \uXXXX (surrogate pairs above U+FFFF). Bytes that are not
// valid UTF-8 become U+FFFD; `valid_utf8`, when given, says whether that
// happened (false) or the text was carried exactly (true).
std::string json_escape(std::string_view bytes, bool *valid_utf8 = nullptr);

// Standard base64 (RFC 4648, with padding) of `bytes`.
std::string base64(std::string_view bytes);

// Writes one JSON document. Keys and values are appended in order; commas,
// nesting and (when `pretty`) indentation are handled here. The caller
// pairs begin/end calls and gives a key before each member of an object.
class JsonWriter {
public:
    explicit JsonWriter(bool pretty) : pretty_(pretty) {}

    JsonWriter &begin_object();
    JsonWriter &end_object();
    JsonWriter &begin_array();
    JsonWriter &end_array();
    JsonWriter &key(std::string_view name);

    JsonWriter &string(std::string_view bytes);
    JsonWriter &number(uint64_t value);
    JsonWriter &number(int64_t value);
    JsonWriter &number(uint32_t value) { return number(uint64_t{value}); }
    JsonWriter &number(int32_t value) { return number(int64_t{value}); }
    // Fixed `decimals`; a value that is not finite is written as null.
    JsonWriter &number(double value, int decimals);
    JsonWriter &boolean(bool value);
    JsonWriter &null();

    // Shorthands for one member of an object.
    template <typename T>
    JsonWriter &member(std::string_view name, T value)
    {
        key(name);
        if constexpr (std::is_same_v<T, bool>)
            return boolean(value);
        else if constexpr (std::is_convertible_v<T, std::string_view>)
            return string(value);
        else
            return number(value);
    }
    JsonWriter &member_null(std::string_view name) { return key(name).null(); }
    JsonWriter &member(std::string_view name, std::optional<double> value, int decimals)
    {
        key(name);
        return value ? number(*value, decimals) : null();
    }

    // The document so far (complete once every begin has its end), with a
    // final newline when `pretty`.
    std::string text() const;

private:
    void before_value();
    void newline();

    bool pretty_;
    std::string out_;
    struct Level {
        bool object;
        bool empty = true;
    };
    std::vector<Level> stack_;
    bool after_key_ = false;
};

} // namespace bips::tool
