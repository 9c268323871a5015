// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: a small JSON writer for --json output.
#include "json.h"

#include <cmath>
#include <cstdio>

namespace bips::tool {

namespace {

void append_u16(std::string &out, uint32_t unit)
{
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\u%04x", unit & 0xffffu);
    out += buf;
}

void append_code_point(std::string &out, uint32_t cp)
{
    if (cp < 0x10000) {
        append_u16(out, cp);
        return;
    }
    cp -= 0x10000;
    append_u16(out, 0xd800 + (cp >> 10));
    append_u16(out, 0xdc00 + (cp & 0x3ff));
}

// Decodes one UTF-8 sequence at `s[i]` (whose first byte is >= 0x80).
// Returns its length and the code point, or 0 when the bytes there are
// not a valid, shortest-form sequence of a scalar value.
std::size_t decode_utf8(std::string_view s, std::size_t i, uint32_t &cp)
{
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = at(i);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf; // range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
        cp = b0 & 0x1fu;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        cp = b0 & 0x0fu;
        if (b0 == 0xe0)
            lo = 0xa0; // no overlong forms
        if (b0 == 0xed)
            hi = 0x9f; // no UTF-16 surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        cp = b0 & 0x07u;
        if (b0 == 0xf0)
            lo = 0x90;
        if (b0 == 0xf4)
            hi = 0x8f; // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (i + len > s.size())
        return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const unsigned char b = at(i + k);
        const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xbf;
        if (b < min || b > max)
            return 0;
        cp = (cp << 6) | (b & 0x3fu);
    }
    return len;
}

} // namespace

std::string json_escape(std::string_view bytes, bool *valid_utf8)
{
    std::string out;
    out.reserve(bytes.size() + bytes.size() / 8);
    bool valid = true;
    for (std::size_t i = 0; i < bytes.size();) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c < 0x80) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                // DEL is valid in JSON but not on a terminal: escape it too.
                if (c < 0x20 || c == 0x7f)
                    append_u16(out, c);
                else
                    out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const std::size_t len = decode_utf8(bytes, i, cp);
        if (len == 0) {
            valid = false;
            append_u16(out, 0xfffd);
            ++i;
            continue;
        }
        append_code_point(out, cp);
        i += len;
    }
    if (valid_utf8)
        *valid_utf8 = valid;
    return out;
}

std::string base64(std::string_view bytes)
{
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    const auto at = [&](std::size_t k) { return uint32_t(static_cast<unsigned char>(bytes[k])); };
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (const std::size_t rest = bytes.size() - i; rest > 0) {
        const uint32_t v = (at(i) << 16) | (rest == 2 ? at(i + 1) << 8 : 0);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

void JsonWriter::newline()
{
    if (!pretty_)
        return;
    out_ += '\n';
    out_.append(stack_.size() * 2, ' ');
}

void JsonWriter::before_value()
{
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!stack_.empty()) {
        if (!stack_.back().empty)
            out_ += ',';
        stack_.back().empty = false;
        newline();
    }
}

JsonWriter &JsonWriter::begin_object()
{
    before_value();
    out_ += '{';
    stack_.push_back({true});
    return *this;
}

JsonWriter &JsonWriter::end_object()
{
    const bool empty = stack_.back().empty;
    stack_.pop_back();
    if (!empty)
        newline();
    out_ += '}';
    return *this;
}

JsonWriter &JsonWriter::begin_array()
{
    before_value();
    out_ += '[';
    stack_.push_back({false});
    return *this;
}

JsonWriter &JsonWriter::end_array()
{
    const bool empty = stack_.back().empty;
    stack_.pop_back();
    if (!empty)
        newline();
    out_ += ']';
    return *this;
}

JsonWriter &JsonWriter::key(std::string_view name)
{
    before_value();
    out_ += '"';
    out_ += json_escape(name);
    out_ += pretty_ ? "\": " : "\":";
    after_key_ = true;
    return *this;
}

JsonWriter &JsonWriter::string(std::string_view bytes)
{
    before_value();
    out_ += '"';
    out_ += json_escape(bytes);
    out_ += '"';
    return *this;
}

JsonWriter &JsonWriter::number(uint64_t value)
{
    before_value();
    out_ += std::to_string(value);
    return *this;
}

JsonWriter &JsonWriter::number(int64_t value)
{
    before_value();
    out_ += std::to_string(value);
    return *this;
}

JsonWriter &JsonWriter::number(double value, int decimals)
{
    if (!std::isfinite(value))
        return null();
    before_value();
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
    out_ += buf;
    return *this;
}

JsonWriter &JsonWriter::boolean(bool value)
{
    before_value();
    out_ += value ? "true" : "false";
    return *this;
}

JsonWriter &JsonWriter::null()
{
    before_value();
    out_ += "null";
    return *this;
}

std::string JsonWriter::text() const
{
    return pretty_ ? out_ + "\n" : out_;
}

} // namespace bips::tool
