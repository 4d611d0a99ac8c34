/* log.h - moved: the tree's logger is common/log.h. */
#include "common/log.h"
