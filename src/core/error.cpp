#include "core/error.h"

namespace mest::detail {

std::string check_prefix(const char * file, int line, const char * expr) {
    std::string path(file);
    auto slash = path.find("src/");
    if (slash != std::string::npos) path = path.substr(slash);
    return "internal error at " + path + ":" + std::to_string(line) + ": check `" + expr + "` failed: ";
}

}  // namespace mest::detail
