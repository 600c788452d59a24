-- A warm pool's schedule: from `starts_at` to `ends_at` the template's pool keeps at least
-- `size` guests (the filler starts early enough to have them ready at `starts_at`), so a
-- class at 9:00 finds its guests booted, and they go away after.
CREATE TABLE pool_schedules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_name text NOT NULL REFERENCES templates (name) ON DELETE CASCADE,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    size          integer NOT NULL CHECK (size BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX pool_schedules_template_idx ON pool_schedules (template_name, ends_at);
