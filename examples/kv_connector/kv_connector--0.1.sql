-- kv_connector 0.1: the target system of the example connector.
\echo Use "CREATE EXTENSION kv_connector" to load this file. \quit

-- Where provider "example.kv" keeps its target states: one row per state.
-- The connector's sink writes it as the app's owner, so an app owner who is
-- not a superuser needs INSERT, UPDATE, DELETE and SELECT on it, e.g.
--   GRANT USAGE ON SCHEMA example_kv TO app_owner;
--   GRANT SELECT, INSERT, UPDATE, DELETE ON example_kv.kv_store TO app_owner;
CREATE TABLE @extschema@.kv_store (
    key   text PRIMARY KEY,
    value jsonb
);

-- Whether this backend has provider "example.kv" registered (it is when the
-- library was loaded, by shared_preload_libraries or by calling this).
CREATE FUNCTION @extschema@.registered() RETURNS boolean
    AS 'MODULE_PATHNAME', 'kv_connector_registered' LANGUAGE C STRICT;
