// MEST_CHECK / MEST_INPUT_CHECK / MEST_FAIL_INPUT: the kind of error, and what the message holds.
#include "core/error.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mest {
namespace {

template <typename Fn>
Error catch_error(Fn && fn) {
    try {
        fn();
    } catch (const Error & e) {
        return e;
    }
    ADD_FAILURE() << "expected mest::Error";
    return Error(ErrorKind::kInternal, "<nothing thrown>");
}

bool contains(const std::string & haystack, const std::string & needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Error, CheckThrowsInternalWithLocationAndExpression) {
    int line = 0;
    const int value = 3;
    const Error e = catch_error([&] {
        // clang-format off
        line = __LINE__; MEST_CHECK(value == 4) << "value is " << value;
        // clang-format on
    });
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    EXPECT_TRUE(contains(message, "error_test.cpp:" + std::to_string(line))) << message;
    EXPECT_TRUE(contains(message, "value == 4")) << message;
    EXPECT_TRUE(contains(message, "value is 3")) << message;
    EXPECT_EQ(message.rfind("internal error at ", 0), 0u) << message;
}

TEST(Error, CheckWithoutStreamedContext) {
    const Error e = catch_error([] { MEST_CHECK(1 + 1 == 3); });
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    EXPECT_TRUE(contains(e.what(), "1 + 1 == 3")) << e.what();
}

TEST(Error, ExceptionWhileStreamingPropagatesInsteadOfTerminating) {
    const auto throwing_value = []() -> int { throw std::out_of_range("streamed value failed"); };
    try {
        MEST_INPUT_CHECK(false) << "value " << throwing_value();
        ADD_FAILURE() << "nothing thrown";
    } catch (const std::out_of_range & e) {
        EXPECT_STREQ(e.what(), "streamed value failed");
    } catch (...) {
        ADD_FAILURE() << "expected the streamed value's own exception";
    }
}

TEST(Error, SourcePathsAreShortenedToSrc) {
    const std::string prefix = detail::check_prefix("/home/build/mest/src/nn/conv2d.cpp", 12, "x > 0");
    EXPECT_EQ(prefix, "internal error at src/nn/conv2d.cpp:12: check `x > 0` failed: ");
}

TEST(Error, PassingChecksDoNotThrowNorEvaluateTheMessage) {
    int evaluated = 0;
    auto count = [&] { return ++evaluated; };
    EXPECT_NO_THROW({ MEST_CHECK(true) << count(); });
    EXPECT_NO_THROW({ MEST_INPUT_CHECK(2 > 1) << count(); });
    EXPECT_EQ(evaluated, 0);
}

TEST(Error, InputCheckThrowsInvalidInputWithOnlyTheMessage) {
    const int epochs = 0;
    const Error e =
        catch_error([&] { MEST_INPUT_CHECK(epochs >= 1) << "--epochs must be at least 1, got " << epochs; });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_STREQ(e.what(), "--epochs must be at least 1, got 0");  // no file, line or expression
}

TEST(Error, FailInputAlwaysThrows) {
    const Error e = catch_error([] {
        MEST_FAIL_INPUT() << "unknown model '"
                          << "resnet99"
                          << "'";
    });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_STREQ(e.what(), "unknown model 'resnet99'");
}

TEST(Error, IsARuntimeError) {
    try {
        MEST_INPUT_CHECK(false) << "boom";
        FAIL() << "not thrown";
    } catch (const std::runtime_error & e) {
        EXPECT_STREQ(e.what(), "boom");
    }
}

}  // namespace
}  // namespace mest
