// Errors that carry context. Library code throws mest::Error; the CLI maps kinds to exit codes.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace mest {

enum class ErrorKind {
    kInvalidInput,  // bad user input: flags, files, data. CLI exit code 2.
    kInternal,      // a broken invariant inside mest: a bug. CLI exit code 1.
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string & what) : std::runtime_error(what), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

// Streams a message and throws on destruction; lets MEST_CHECK(x) << "context" read naturally.
class ErrorBuilder {
public:
    ErrorBuilder(ErrorKind kind, const char * prefix) : kind_(kind) { stream_ << prefix; }
    template <typename T>
    ErrorBuilder & operator<<(const T & value) {
        stream_ << value;
        return *this;
    }
    [[noreturn]] ~ErrorBuilder() noexcept(false) { throw Error(kind_, stream_.str()); }

private:
    ErrorKind kind_;
    std::ostringstream stream_;
};

namespace detail {
std::string check_prefix(const char * file, int line, const char * expr);
}  // namespace detail

}  // namespace mest

// Internal invariant: always on, reports file:line and the failed expression plus streamed values.
#define MEST_CHECK(cond)                                   \
    if (cond) {                                            \
    } else                                                 \
        ::mest::ErrorBuilder(::mest::ErrorKind::kInternal, \
                             ::mest::detail::check_prefix(__FILE__, __LINE__, #cond).c_str())

// User-facing failure: message only, no source location.
#define MEST_INPUT_CHECK(cond) \
    if (cond) {                \
    } else                     \
        ::mest::ErrorBuilder(::mest::ErrorKind::kInvalidInput, "")

#define MEST_FAIL_INPUT() ::mest::ErrorBuilder(::mest::ErrorKind::kInvalidInput, "")
