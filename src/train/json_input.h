// JSON read from files a user hands over (--config, a checkpoint's header).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mest::train {

// Far deeper than any mest file nests; copying, comparing or printing a json value recurses once
// per level, so a hostile file nested a million levels deep would otherwise overflow the stack
// after it parsed.
constexpr int kMaxJsonDepth = 64;

// Parses `text`; a syntax error or nesting beyond kMaxJsonDepth is an input error naming `source`.
nlohmann::json parse_json_input(std::string_view text, const std::string & source);

}  // namespace mest::train
