-- A console ticket opens one thing: the console page ('page': redeemed for the VNC password
-- and a websocket ticket) or the websocket itself ('ws'). A websocket ticket, which rides in
-- noVNC's URL, must not be good for the password.
ALTER TABLE console_tickets
    ADD COLUMN purpose text NOT NULL DEFAULT 'ws' CHECK (purpose IN ('page', 'ws'));
