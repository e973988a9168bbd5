package tools

// chmod(1)'s mode operands and chown(8)'s owner operands.

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"

	"github.com/ufs2/ufs2/ondisk"
)

// ErrBadMode is returned by ParseMode for a mode operand chmod(1) would
// reject; ErrBadOwner by ParseOwner for an unknown user or group.
var (
	ErrBadMode  = errors.New("tools: invalid file mode")
	ErrBadOwner = errors.New("tools: invalid owner")
)

// Mode is a parsed chmod mode operand: absolute (octal) or a list of
// symbolic clauses applied in order.
type Mode struct {
	abs     bool
	val     uint16
	umask   uint16
	clauses []modeClause
}

type modeClause struct {
	who uint16 // 0 (none given) or u 0o700 | g 0o070 | o 0o007
	ops []modeOp
}

type modeOp struct {
	op    byte   // '+', '-' or '='
	perms string // letters of rwxXst, or one of u, g, o to copy
}

// ParseMode parses a mode operand as chmod(1) does (setmode(3)'s
// grammar): an octal number up to 07777 sets the mode absolutely;
// otherwise a comma-separated list of clauses [ugoa]*[+-=][rwxXst]* (or
// [+-=] followed by one of u, g, o to copy those bits), several operators
// allowed in one clause ("u+r-w"). A clause without u, g, o or a acts on
// all three but leaves the bits set in umask alone. X is x for
// directories and for files with some x bit already set; s is setuid with
// u and setgid with g (both when no who is given); t is the sticky bit,
// ignored when only o is given. = clears the who's rwx bits and setuid or
// setgid with u or g before setting.
func ParseMode(s string, umask uint16) (Mode, error) {
	bad := func(why string) (Mode, error) {
		return Mode{}, fmt.Errorf("%w: %q: %s", ErrBadMode, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if s[0] >= '0' && s[0] <= '9' {
		v, err := strconv.ParseUint(s, 8, 32)
		if err != nil || v > 0o7777 {
			return bad("an absolute mode is an octal number up to 07777")
		}
		return Mode{abs: true, val: uint16(v)}, nil
	}
	m := Mode{umask: umask & 0o777}
	for _, cl := range strings.Split(s, ",") {
		var c modeClause
		i := 0
	who:
		for ; i < len(cl); i++ {
			switch cl[i] {
			case 'u':
				c.who |= 0o700
			case 'g':
				c.who |= 0o070
			case 'o':
				c.who |= 0o007
			case 'a':
				c.who |= 0o777
			default:
				break who
			}
		}
		if i == len(cl) {
			return bad("a clause needs an operator: + - or =")
		}
		for i < len(cl) {
			op := cl[i]
			if op != '+' && op != '-' && op != '=' {
				return bad(fmt.Sprintf("unexpected %q; want + - or =", op))
			}
			i++
			j := i
			for j < len(cl) && cl[j] != '+' && cl[j] != '-' && cl[j] != '=' {
				j++
			}
			perms := cl[i:j]
			switch {
			case perms == "u" || perms == "g" || perms == "o":
			case strings.Trim(perms, "rwxXst") == "":
			default:
				return bad(fmt.Sprintf("bad permissions %q: use r w x X s t, or one of u g o", perms))
			}
			c.ops = append(c.ops, modeOp{op: op, perms: perms})
			i = j
		}
		m.clauses = append(m.clauses, c)
	}
	return m, nil
}

// Apply returns the permission bits (07777) that m gives a file whose
// bits are old; isDir says whether it is a directory (for X).
func (m Mode) Apply(old uint16, isDir bool) uint16 {
	if m.abs {
		return m.val
	}
	cur := old & 0o7777
	for _, c := range m.clauses {
		who := c.who
		mask := uint16(0o7777) // bits this clause may touch
		if who == 0 {
			who = 0o777
			mask &^= m.umask
		}
		for _, o := range c.ops {
			var bits uint16
			switch o.perms {
			case "u":
				bits = (cur >> 6 & 7) * 0o111
			case "g":
				bits = (cur >> 3 & 7) * 0o111
			case "o":
				bits = (cur & 7) * 0o111
			default:
				for _, ch := range o.perms {
					switch ch {
					case 'r':
						bits |= 0o444
					case 'w':
						bits |= 0o222
					case 'x':
						bits |= 0o111
					case 'X':
						if isDir || cur&0o111 != 0 {
							bits |= 0o111
						}
					case 's':
						if who&0o700 != 0 {
							bits |= ondisk.ISUID
						}
						if who&0o070 != 0 {
							bits |= ondisk.ISGID
						}
					case 't':
						if c.who == 0 || c.who&^0o007 != 0 {
							bits |= ondisk.ISVTX
						}
					}
				}
			}
			bits &= (who | ondisk.ISUID | ondisk.ISGID | ondisk.ISVTX) & mask
			switch o.op {
			case '+':
				cur |= bits
			case '-':
				cur &^= bits
			case '=':
				clear := who & mask
				if who&0o700 != 0 {
					clear |= ondisk.ISUID
				}
				if who&0o070 != 0 {
					clear |= ondisk.ISGID
				}
				cur = cur&^clear | bits
			}
		}
	}
	return cur
}

// ParseOwner parses chown's OWNER[:GROUP] operand (also ":GROUP", and
// "OWNER.GROUP" as BSD still accepts when no ':' is present). Each of
// OWNER and GROUP is a number or a name looked up on the host. A nil
// result leaves that id unchanged.
func ParseOwner(s string) (uid, gid *uint32, err error) {
	owner, group, hasGroup := strings.Cut(s, ":")
	if !hasGroup && strings.Contains(s, ".") {
		if _, err := lookupUser(s); err != nil {
			owner, group, hasGroup = strings.Cut(s, ".")
		}
	}
	if owner == "" && (!hasGroup || group == "") {
		return nil, nil, fmt.Errorf("%w: %q: give OWNER, OWNER:GROUP or :GROUP", ErrBadOwner, s)
	}
	if owner != "" {
		v, err := lookupUser(owner)
		if err != nil {
			return nil, nil, err
		}
		uid = &v
	}
	if group != "" {
		v, err := lookupGroup(group)
		if err != nil {
			return nil, nil, err
		}
		gid = &v
	}
	return uid, gid, nil
}

func lookupUser(s string) (uint32, error) {
	if v, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(v), nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("%w: unknown user %q", ErrBadOwner, s)
	}
	v, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: user %q has uid %q", ErrBadOwner, s, u.Uid)
	}
	return uint32(v), nil
}

func lookupGroup(s string) (uint32, error) {
	if v, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(v), nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("%w: unknown group %q", ErrBadOwner, s)
	}
	v, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: group %q has gid %q", ErrBadOwner, s, g.Gid)
	}
	return uint32(v), nil
}
