// SPDX-License-Identifier: LGPL-2.1-or-later
// Crash points for the fault tests: VMB_CRASH_AT=<point> makes the process SIGKILL itself
// when it reaches that point, so a test can check what a restart makes of the remains.
#pragma once

/* Dies by SIGKILL when the environment variable VMB_CRASH_AT equals @point. The points are
 * listed where they are placed (broker/services/svc-vms.c). */
void vmb_crash_point(const char *point);
