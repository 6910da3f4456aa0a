// Text that goes into the report page: HTML escaping (every string read from a run directory passes
// through it, in element text and in attribute values alike) and the number formats the page uses.
#pragma once
#include <string>
#include <string_view>

namespace mest::report {

// Escapes & < > " ' so the result is safe as element text and inside a quoted attribute.
std::string html_escape(std::string_view text);

// "%.*f"
std::string fixed(double value, int decimals);
// 0.9123 -> "91.23%"
std::string percent(double fraction, int decimals = 2);
// A chart axis label: short, with the precision the tick step needs.
std::string axis_number(double value, double step);

}  // namespace mest::report
