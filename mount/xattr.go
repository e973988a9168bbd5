package mount

import (
	"context"
	"strings"
	"syscall"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/ufs"
)

// Extended attribute names. FreeBSD has two namespaces, user and system;
// Linux names carry the namespace as a prefix. The mapping is the one
// `ufs2 get` uses for host copies:
//
//	user.NAME                 ↔ user namespace, NAME
//	trusted.NAME              ↔ system namespace, NAME
//	system.posix_acl_access   ↔ system namespace, posix1e.acl_access (converted, see acl.go)
//	system.posix_acl_default  ↔ system namespace, posix1e.acl_default (converted)
//
// Other Linux namespaces (security.*, other system.* names) have no place
// on a UFS2 filesystem: reading them finds nothing, setting them fails
// with EOPNOTSUPP.

type aclKind int

const (
	noACL aclKind = iota
	accessACL
	defaultACL
)

// xattrName is a Linux attribute name resolved to its FreeBSD place.
type xattrName struct {
	ns   uint8
	name string
	acl  aclKind
}

// parseXattrName resolves a Linux attribute name; ok is false for names
// with no FreeBSD counterpart.
func parseXattrName(linux string) (x xattrName, ok bool) {
	switch {
	case linux == linuxACLAccess:
		return xattrName{ondisk.ExtattrNamespaceSystem, bsdACLAccessName, accessACL}, true
	case linux == linuxACLDefault:
		return xattrName{ondisk.ExtattrNamespaceSystem, bsdACLDefaultName, defaultACL}, true
	case strings.HasPrefix(linux, "user.") && len(linux) > len("user."):
		return xattrName{ns: ondisk.ExtattrNamespaceUser, name: linux[len("user."):]}, true
	case strings.HasPrefix(linux, "trusted.") && len(linux) > len("trusted."):
		n := linux[len("trusted."):]
		if n == bsdACLAccessName || n == bsdACLDefaultName {
			// Reachable only through system.posix_acl_*, which keep
			// the mode and the ACL in step.
			return xattrName{}, false
		}
		return xattrName{ns: ondisk.ExtattrNamespaceSystem, name: n}, true
	}
	return xattrName{}, false
}

// linuxXattrName is the Linux name of a FreeBSD attribute, or "" if it has
// none (an unknown namespace).
func linuxXattrName(ns uint8, name string) string {
	switch ns {
	case ondisk.ExtattrNamespaceUser:
		return "user." + name
	case ondisk.ExtattrNamespaceSystem:
		switch name {
		case bsdACLAccessName:
			return linuxACLAccess
		case bsdACLDefaultName:
			return linuxACLDefault
		}
		return "trusted." + name
	}
	return ""
}

// copyOut copies val into dest as getxattr(2) and listxattr(2) do: a
// zero-length dest asks for the size; a short one gives ERANGE.
func copyOut(dest, val []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(val)), 0
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	ino := n.ino()
	all, err := n.m.eng.ListXattr(ino)
	if err != nil {
		return 0, n.m.errno("listxattr", uint64(ino), err)
	}
	var list []byte
	for _, x := range all {
		if name := linuxXattrName(x.Namespace, x.Name); name != "" {
			list = append(list, name...)
			list = append(list, 0)
		}
	}
	return copyOut(dest, list)
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	x, ok := parseXattrName(attr)
	if !ok {
		return 0, syscall.ENODATA
	}
	ino := n.ino()
	val, err := n.m.eng.GetXattr(ino, x.ns, x.name)
	if err != nil {
		return 0, n.m.errno("getxattr", uint64(ino), err)
	}
	if x.acl != noACL {
		var st ufs.Stat
		if x.acl == accessACL {
			if st, err = n.m.eng.Stat(ino); err != nil {
				return 0, n.m.errno("getxattr", uint64(ino), err)
			}
		}
		val, err = aclToLinux(val, x.acl == accessACL, st.Mode)
		if err != nil {
			return 0, n.m.errno("getxattr", uint64(ino), err)
		}
	}
	return copyOut(dest, val)
}
