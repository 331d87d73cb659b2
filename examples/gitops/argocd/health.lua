-- Argo CD health of a converse.dev/ConverseServer, from the kstatus-style conditions that
-- converse-operator writes (Ready, Reconciling, Stalled; see docs/GITOPS.md). Lua 5.1 (gopher-lua):
-- the object is the global `obj`; the result is a table with `status` and `message`.
-- argocd-cm.yaml embeds this file verbatim (operator/tests/argocd_health.rs checks both).
local hs = {}

local function condition(conditions, wanted)
  for _, c in ipairs(conditions or {}) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for converse-operator to report status"
  return hs
end

-- A status older than the spec describes the previous spec: whatever it says is stale.
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for converse-operator to observe generation " .. tostring(generation)
  return hs
end

-- Stalled: the spec or a Secret needs a person; the message names the field or Secret and key.
local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

-- Reconciling=True (rollout in progress) or Ready not True yet: wait, saying why.
local reconciling = condition(status.conditions, "Reconciling")
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
elseif reconciling ~= nil and reconciling.status == "True" and reconciling.message ~= nil then
  hs.message = reconciling.message
else
  hs.message = "Waiting for the ConverseServer to become Ready"
end
return hs
