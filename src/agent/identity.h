/* vessel-agent --set-identity (identity.c): a clone's own MAC, address and
 * hostname inside the guest. */
#ifndef VESSEL_AGENT_IDENTITY_H
#define VESSEL_AGENT_IDENTITY_H

/* argv: the options after --set-identity. The exit status. */
int agent_set_identity(int argc, char **argv);

#endif
