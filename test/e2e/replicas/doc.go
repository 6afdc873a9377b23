// Package replicas tests two kaginashi server processes sharing one
// PostgreSQL: a key pushed, or a tunnel opened, through the replica that
// does not hold the agent's connection is routed to the one that does; a
// dead holder answers EC2InstanceUnavailableException quickly until the
// agent reconnects to a live replica; with --peer-listen that routing goes
// through the holder's own peer listener, and its public one answers
// /_peer/ with 404. Real parts throughout: PostgreSQL
// (pgtest), the server binary twice, kaginashi-agent, OpenSSH's sshd and
// ssh, the AWS SDK for Go v2.
package replicas
