// Errors that carry context. Library code throws mest::Error; the CLI maps kinds to exit codes.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mest {

enum class ErrorKind {
    kInvalidInput,  // bad user input: flags, files, data. CLI exit code 2.
    kInternal,      // a broken invariant inside mest: a bug. CLI exit code 1.
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string what) : std::runtime_error(""), kind_(kind), message_(std::move(what)) {}
    ErrorKind kind() const { return kind_; }
    const char * what() const noexcept override { return message_.c_str(); }

    template <typename T>
    Error & append(const T & value) {
        std::ostringstream text;
        text << value;
        message_ += text.str();
        return *this;
    }

private:
    ErrorKind kind_;
    std::string message_;
};

// `throw Error(kind, "") << "context " << value`: the message is built inside the throw expression,
// so the compiler knows the statement does not return, and a streamed value that itself throws
// simply propagates (a builder that threw from its destructor would terminate then).
template <typename T>
Error && operator<<(Error && error, const T & value) {
    return std::move(error.append(value));
}

namespace detail {
std::string check_prefix(const char * file, int line, const char * expr);
}  // namespace detail

}  // namespace mest

// Internal invariant: always on, reports file:line and the failed expression plus streamed values.
#define MEST_CHECK(cond) \
    if (cond) {          \
    } else               \
        throw ::mest::Error(::mest::ErrorKind::kInternal, ::mest::detail::check_prefix(__FILE__, __LINE__, #cond))

// User-facing failure: message only, no source location.
#define MEST_INPUT_CHECK(cond) \
    if (cond) {                \
    } else                     \
        throw ::mest::Error(::mest::ErrorKind::kInvalidInput, "")

#define MEST_FAIL_INPUT() throw ::mest::Error(::mest::ErrorKind::kInvalidInput, "")
