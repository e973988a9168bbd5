package mount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// POSIX.1e ACLs. FreeBSD keeps them as extended attributes of the system
// namespace, "posix1e.acl_access" and "posix1e.acl_default", each holding
// a struct oldacl (sys/sys/acl.h) in host (little-endian) order:
//
//	0:  int32 acl_cnt
//	4:  32 × struct oldacl_entry, 12 bytes each:
//	      0: int32  ae_tag   (ACL_USER_OBJ, ...)
//	      4: uint32 ae_id    (uid or gid; ACL_UNDEFINED_ID for the others)
//	      8: uint16 ae_perm  (mode_t: ACL_READ|ACL_WRITE|ACL_EXECUTE)
//	     10: 2 bytes of padding
//
// always 388 bytes whatever acl_cnt is. For the access ACL, the
// ACL_USER_OBJ, ACL_OTHER and ACL_MASK (or, without a mask,
// ACL_GROUP_OBJ) permissions stored there are stale: FreeBSD takes them
// from the inode's mode (ufs_sync_acl_from_inode), and so does aclToLinux.
//
// Linux passes ACLs through the "system.posix_acl_access" and
// "system.posix_acl_default" attributes in its own format
// (include/uapi/linux/posix_acl_xattr.h): a little-endian uint32 version 2,
// then 8-byte entries {uint16 tag, uint16 perm, uint32 id}, sorted by tag
// and then id. The tag and permission values are the same on both sides.

const (
	bsdACLAccessName  = "posix1e.acl_access"
	bsdACLDefaultName = "posix1e.acl_default"
	linuxACLAccess    = "system.posix_acl_access"
	linuxACLDefault   = "system.posix_acl_default"

	oldACLMaxEntries = 32
	oldACLEntrySize  = 12
	oldACLSize       = 4 + oldACLMaxEntries*oldACLEntrySize // sizeof(struct oldacl)

	linuxACLVersion   = 2
	linuxACLEntrySize = 8

	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20

	aclUndefinedID = 0xffffffff
	aclPermBits    = 0x7
)

// errBadACL marks an ACL that breaks the format or POSIX.1e's rules.
var errBadACL = errors.New("invalid POSIX.1e ACL")

type aclEntry struct {
	tag  uint32
	id   uint32
	perm uint16
}

// decodeOldACL decodes FreeBSD's struct oldacl.
func decodeOldACL(b []byte) ([]aclEntry, error) {
	if len(b) != oldACLSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errBadACL, len(b), oldACLSize)
	}
	n := int32(binary.LittleEndian.Uint32(b))
	if n < 0 || n > oldACLMaxEntries {
		return nil, fmt.Errorf("%w: acl_cnt %d", errBadACL, n)
	}
	out := make([]aclEntry, n)
	for i := range out {
		e := b[4+i*oldACLEntrySize:]
		out[i] = aclEntry{
			tag:  binary.LittleEndian.Uint32(e),
			id:   binary.LittleEndian.Uint32(e[4:]),
			perm: binary.LittleEndian.Uint16(e[8:]),
		}
	}
	return out, nil
}

// encodeOldACL encodes entries as FreeBSD's struct oldacl.
func encodeOldACL(entries []aclEntry) ([]byte, error) {
	if len(entries) > oldACLMaxEntries {
		return nil, fmt.Errorf("%w: %d entries, FreeBSD stores at most %d", errBadACL, len(entries), oldACLMaxEntries)
	}
	b := make([]byte, oldACLSize)
	binary.LittleEndian.PutUint32(b, uint32(len(entries)))
	for i, a := range entries {
		e := b[4+i*oldACLEntrySize:]
		binary.LittleEndian.PutUint32(e, a.tag)
		binary.LittleEndian.PutUint32(e[4:], a.id)
		binary.LittleEndian.PutUint16(e[8:], a.perm)
	}
	return b, nil
}

// checkACL applies POSIX.1e's rules (FreeBSD's acl_posix1e_check, Linux's
// posix_acl_valid): known tags, permission bits only, exactly one
// USER_OBJ, GROUP_OBJ and OTHER, at most one MASK, which is required when
// named USER or GROUP entries exist, and no duplicate named entry. An
// empty list is valid (no ACL).
func checkACL(entries []aclEntry) error {
	count := map[uint32]int{}
	seen := map[[2]uint32]bool{}
	for _, e := range entries {
		switch e.tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
		case aclUser, aclGroup:
			k := [2]uint32{e.tag, e.id}
			if seen[k] || e.id == aclUndefinedID {
				return fmt.Errorf("%w: named entry (tag 0x%x, id %d) repeated or without an id", errBadACL, e.tag, e.id)
			}
			seen[k] = true
		default:
			return fmt.Errorf("%w: unknown tag 0x%x", errBadACL, e.tag)
		}
		if e.perm&^aclPermBits != 0 {
			return fmt.Errorf("%w: permission bits 0x%x", errBadACL, e.perm)
		}
		count[e.tag]++
	}
	if len(entries) == 0 {
		return nil
	}
	if count[aclUserObj] != 1 || count[aclGroupObj] != 1 || count[aclOther] != 1 || count[aclMask] > 1 {
		return fmt.Errorf("%w: needs exactly one owner, group and other entry and at most one mask", errBadACL)
	}
	if count[aclUser]+count[aclGroup] > 0 && count[aclMask] == 0 {
		return fmt.Errorf("%w: named entries need a mask entry", errBadACL)
	}
	return nil
}

// sortACL puts entries in the order Linux requires.
func sortACL(entries []aclEntry) {
	slices.SortFunc(entries, func(a, b aclEntry) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
}

// syncACLFromMode overwrites the permissions an access ACL shares with the
// mode, as ufs_sync_acl_from_inode does.
func syncACLFromMode(entries []aclEntry, mode uint16) {
	hasMask := slices.ContainsFunc(entries, func(e aclEntry) bool { return e.tag == aclMask })
	for i := range entries {
		e := &entries[i]
		switch e.tag {
		case aclUserObj:
			e.perm = mode >> 6 & 7
		case aclOther:
			e.perm = mode & 7
		case aclMask:
			e.perm = mode >> 3 & 7
		case aclGroupObj:
			if !hasMask {
				e.perm = mode >> 3 & 7
			}
		}
		if e.tag != aclUser && e.tag != aclGroup {
			e.id = aclUndefinedID
		}
	}
}

// aclToLinux converts a FreeBSD ACL attribute value to Linux's xattr
// format; for an access ACL, mode supplies the owner, group (or mask) and
// other permissions.
func aclToLinux(raw []byte, access bool, mode uint16) ([]byte, error) {
	entries, err := decodeOldACL(raw)
	if err != nil {
		return nil, err
	}
	if err := checkACL(entries); err != nil {
		return nil, err
	}
	if access {
		syncACLFromMode(entries, mode)
	}
	sortACL(entries)
	b := make([]byte, 4+len(entries)*linuxACLEntrySize)
	binary.LittleEndian.PutUint32(b, linuxACLVersion)
	for i, e := range entries {
		o := b[4+i*linuxACLEntrySize:]
		binary.LittleEndian.PutUint16(o, uint16(e.tag))
		binary.LittleEndian.PutUint16(o[2:], e.perm)
		binary.LittleEndian.PutUint32(o[4:], e.id)
	}
	return b, nil
}

// aclFromLinux converts Linux's xattr format to FreeBSD's struct oldacl,
// checking POSIX.1e's rules. It also returns the permission bits the
// mode takes from an access ACL (owner, mask or group, other).
func aclFromLinux(b []byte) (raw []byte, perm uint16, err error) {
	if len(b) < 4 || (len(b)-4)%linuxACLEntrySize != 0 {
		return nil, 0, fmt.Errorf("%w: %d bytes", errBadACL, len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != linuxACLVersion {
		return nil, 0, fmt.Errorf("%w: version %d", errBadACL, v)
	}
	entries := make([]aclEntry, (len(b)-4)/linuxACLEntrySize)
	for i := range entries {
		o := b[4+i*linuxACLEntrySize:]
		entries[i] = aclEntry{
			tag:  uint32(binary.LittleEndian.Uint16(o)),
			perm: binary.LittleEndian.Uint16(o[2:]),
			id:   binary.LittleEndian.Uint32(o[4:]),
		}
		if t := entries[i].tag; t != aclUser && t != aclGroup {
			entries[i].id = aclUndefinedID
		}
	}
	if err := checkACL(entries); err != nil {
		return nil, 0, err
	}
	sortACL(entries)
	var user, group, mask, other uint16
	hasMask := false
	for _, e := range entries {
		switch e.tag {
		case aclUserObj:
			user = e.perm
		case aclGroupObj:
			group = e.perm
		case aclMask:
			mask, hasMask = e.perm, true
		case aclOther:
			other = e.perm
		}
	}
	if hasMask {
		group = mask
	}
	raw, err = encodeOldACL(entries)
	return raw, user<<6 | group<<3 | other, err
}

// aclCreateMasq applies the permission bits a new inode is created with
// (before any umask) to the directory's default ACL, which becomes the
// inode's access ACL, as Linux's posix_acl_create_masq does: the owner
// and other entries and the mask (or, without one, the group entry) keep
// only what mode grants, and the mode keeps only what they grant. It
// returns the resulting permission bits and whether the ACL says more
// than they do (then it must be stored).
func aclCreateMasq(entries []aclEntry, mode uint16) (uint16, bool) {
	needed := false
	var groupObj, mask *aclEntry
	for i := range entries {
		e := &entries[i]
		switch e.tag {
		case aclUserObj:
			e.perm &= mode >> 6 & 7
			mode &= e.perm<<6 | ^uint16(0o700)
		case aclUser, aclGroup:
			needed = true
		case aclGroupObj:
			groupObj = e
		case aclMask:
			mask, needed = e, true
		case aclOther:
			e.perm &= mode & 7
			mode &= e.perm | ^uint16(0o7)
		}
	}
	if mask != nil {
		mask.perm &= mode >> 3 & 7
		mode &= mask.perm<<3 | ^uint16(0o70)
	} else if groupObj != nil {
		groupObj.perm &= mode >> 3 & 7
		mode &= groupObj.perm<<3 | ^uint16(0o70)
	}
	return mode & 0o777, needed
}
