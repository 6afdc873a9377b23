// Package rotate tests `kaginashi server rotate-master-key` against real
// server processes and a real agent, on SQLite and PostgreSQL: what was
// sealed before the rotation works after it, and the old key opens
// nothing.
package rotate
