-- Templates an admin defines through the API (POST/PUT /api/v1/templates), kept as the JSON
-- text they were given and loaded beside templates.dir's files by every broker. A file of
-- the same name wins: the API refuses such names, and a file added later shadows the row.
CREATE TABLE api_templates (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    definition text NOT NULL CHECK (length(definition) BETWEEN 2 AND 65536),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
