// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the error model of the core library (an expected-like Result).
#pragma once

#include <bips/export.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace bips {

// Every failure the core reports. The enum is stable: the GObject facade
// maps it one to one onto its GError domain.
enum class Errc {
    InvalidArgument = 1, // a parameter is out of range (the message names it)
    InvalidName,         // a channel name the OS or bips rejects
    NotFound,            // no such channel (or no producer yet)
    Busy,                // a live producer already owns the channel
    NoSpace,             // the shared-memory file system is too small
    PermissionDenied,    // the channel socket's mode forbids this user
    Corrupt,             // what a peer or the channel directory holds fails validation
    Incompatible,        // another version of bips made the channel
    Timeout,             // a bounded wait ran out
    WouldBlock,          // a non-blocking call found nothing to do
    ProducerGone,        // the producer exited or died; reattach() to go on
    EndOfStream,         // the producer marked the end of the stream
    TooManyConsumers,    // every consumer entry of the channel is taken
    System,              // an unexpected system call failure (errno text)
    TooManyHeld,         // the consumer holds ConsumerOptions::max_held frames
};

// Short lower-case identifier of an error code, e.g. "no-space".
BIPS_EXPORT const char *errc_name(Errc code) noexcept;

// An error: a code to branch on and a message for people. Messages name the
// channel, the sizes or the permission involved and say what to do.
struct Error {
    Errc code;
    std::string message;
};

namespace detail {

// What misusing a Result does: print what happened to stderr and abort (no
// exception crosses the API). Out of line and cold, so the checks in the
// accessors stay cheap.
[[noreturn, gnu::cold, gnu::noinline]] inline void result_holds_error(const Error &e) noexcept
{
    std::fprintf(stderr,
                 "bips: Result holds an error, not a value: %s: %s\n"
                 "bips: check ok() (or `if (result)`) before value(), operator* or operator->\n",
                 errc_name(e.code), e.message.c_str());
    std::abort();
}

[[noreturn, gnu::cold, gnu::noinline]] inline void result_holds_value() noexcept
{
    std::fputs("bips: Result holds a value, not an error: error() and code() are only for a "
               "Result whose ok() is false\n",
               stderr);
    std::abort();
}

} // namespace detail

// A value or an Error. No exceptions cross the library's API: callers test
// ok() before value(). Reading the value of a failed Result (value(),
// operator*, operator->), or the error of a successful one, is a programming
// error: it prints the error's code and message to stderr and aborts.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T &value() & { return *get(); }
    const T &value() const & { return *get(); }
    T &&value() && { return std::move(*get()); }
    T *operator->() { return get(); }
    const T *operator->() const { return get(); }
    T &operator*() & { return *get(); }
    const T &operator*() const & { return *get(); }

    const Error &error() const
    {
        if (ok()) [[unlikely]]
            detail::result_holds_value();
        return *std::get_if<1>(&v_);
    }
    Errc code() const { return error().code; }

private:
    T *get()
    {
        if (!ok()) [[unlikely]]
            detail::result_holds_error(*std::get_if<1>(&v_));
        return std::get_if<0>(&v_);
    }
    const T *get() const
    {
        if (!ok()) [[unlikely]]
            detail::result_holds_error(*std::get_if<1>(&v_));
        return std::get_if<0>(&v_);
    }

    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : e_(std::move(error)) {}

    bool ok() const noexcept { return !e_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    const Error &error() const
    {
        if (ok()) [[unlikely]]
            detail::result_holds_value();
        return *e_;
    }
    Errc code() const { return error().code; }

private:
    std::optional<Error> e_;
};

// Builds an Error; the message should say what failed and how to fix it.
inline Error make_error(Errc code, std::string message)
{
    return Error{code, std::move(message)};
}

} // namespace bips
