#include "report/html_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mest::report {

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += ch;
        }
    }
    return out;
}

std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

std::string percent(double fraction, int decimals) {
    return fixed(100.0 * fraction, decimals) + "%";
}

std::string axis_number(double value, double step) {
    const double magnitude = std::max(std::fabs(value), std::fabs(step));
    char buf[64];
    if (magnitude >= 1e5 || (magnitude > 0 && magnitude < 1e-3)) {
        std::snprintf(buf, sizeof buf, "%.2g", value);
    } else {
        const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
        std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(value) < step * 1e-6 ? 0.0 : value);
    }
    return buf;
}

}  // namespace mest::report
