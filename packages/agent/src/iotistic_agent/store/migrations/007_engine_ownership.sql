-- Whether this agent adopts the managed containers, networks and volumes that carry no
-- device UUID label (engine/ownership.py): decided once, here. A database that already
-- holds a device identity predates the label, and its agent made those objects; a new
-- database (its identity is created after the migrations) never takes them, so a second
-- agent on the same engine cannot remove the first one's apps (issue 12, item 5b).
CREATE TABLE engine_ownership (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    adopt_unlabelled INTEGER NOT NULL
);

INSERT INTO engine_ownership (id, adopt_unlabelled)
SELECT 1, EXISTS (SELECT 1 FROM device);
