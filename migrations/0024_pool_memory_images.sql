-- A warm pool's guest of a `memory_image` template waits stopped with its memory saved by
-- libvirt (managed save), not running: `saved_at` says since when. A take restores it with
-- fresh ports; a start that writes a new definition drops the image, and clears this.
ALTER TABLE vms ADD COLUMN saved_at timestamptz;
