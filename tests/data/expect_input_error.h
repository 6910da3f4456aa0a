// Asserts that a call fails as bad user input with a one-line message containing given fragments.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace mest::test {

template <typename Fn>
void expect_input_error(Fn && fn, const std::vector<std::string> & fragments) {
    try {
        fn();
        ADD_FAILURE() << "expected an input error";
    } catch (const mest::Error & e) {
        const std::string message = e.what();
        EXPECT_EQ(e.kind(), mest::ErrorKind::kInvalidInput) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        for (const auto & fragment : fragments)
            EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
    }
}

}  // namespace mest::test
