// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker template list|render`: what the loaded templates are, and the domain XML a
// template gives, with placeholder instance values an admin can read or `virsh define`.
#pragma once

int cmd_template_main(const char *templates_dir, const char *name_prefix, const char *domain_type,
                      int argc, char **argv);
