// Package tools holds the programs of the ufs2 command as library code:
// dumpfs and the offline file verbs (List and ListPaths for ls, Cat for
// cat and get -, Get for get, Put for put with EstimateTree for its space
// check, Mkdir, Remove, Rename, Link, Symlink, Chmod and Chown for mkdir,
// rm, mv, ln, chmod and chown, with ParseMode and ParseOwner for their
// operands), each working on an opened device or filesystem and writing
// to an io.Writer or the host, with no flag parsing or exit codes (those
// are cmd/ufs2's). Put's copying is newfs.Copier's, which newfs --from
// uses too.
package tools
