-- SPDX-License-Identifier: Apache-2.0
-- What the kernel reported for each sealed file just after its seal (write
-- bits already removed): inode number, mtime and ctime in nanoseconds. Every
-- open of a sealed file compares them, and the size, with one fstat; a file
-- changed behind the registry's back is then refused. NULL until recorded
-- (files sealed before this migration are recorded at the next start).
ALTER TABLE files ADD COLUMN ino INTEGER;
ALTER TABLE files ADD COLUMN mtime_ns INTEGER;
ALTER TABLE files ADD COLUMN ctime_ns INTEGER;
CREATE INDEX files_ino ON files(version_id, ino);
CREATE INDEX files_unrecorded ON files(version_id) WHERE ino IS NULL;
