#include "train/json_input.h"

#include "core/error.h"

namespace mest::train {

nlohmann::json parse_json_input(std::string_view text, const std::string & source) {
    // The callback sees each array or object open at its parent's depth, before it is built.
    const nlohmann::json::parser_callback_t limit_depth = [&](int depth, nlohmann::json::parse_event_t event,
                                                              nlohmann::json &) {
        const bool opens =
            event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start;
        MEST_INPUT_CHECK(!opens || depth < kMaxJsonDepth)
            << source << ": JSON nested deeper than " << kMaxJsonDepth << " levels";
        return true;
    };
    try {
        return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << source << ": not valid JSON (" << e.what() << ")";
    }
    return {};
}

}  // namespace mest::train
