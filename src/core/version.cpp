#include "core/version.h"

namespace mest {

// Defined for this file only, so a new commit recompiles one file, not the project.
const char * version() {
    return MEST_VERSION;
}
const char * git_commit() {
    return MEST_GIT_COMMIT;
}

}  // namespace mest
