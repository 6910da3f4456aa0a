// Version and build commit, recorded in every config.json and checkpoint.
#pragma once

namespace mest {

const char * version();
const char * git_commit();

}  // namespace mest
