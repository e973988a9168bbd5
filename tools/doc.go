// Package tools holds the programs of the ufs2 command as library code:
// dumpfs and the offline file verbs (List for ls, Get for get), each
// working on an opened device or filesystem and writing to an io.Writer or
// the host, with no flag parsing or exit codes (those are cmd/ufs2's).
package tools
