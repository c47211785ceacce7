// The two renderings of a DumpData: text for people (in the manner of
// dumpe2fs) and one JSON object for programs. Both show the same facts.
#pragma once

#include <ostream>

#include "collect.h"

namespace nvswapfs::dump {

void PrintText(const DumpData& data, std::ostream& out);
void PrintJson(const DumpData& data, std::ostream& out);

}  // namespace nvswapfs::dump
