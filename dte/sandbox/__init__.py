"""The local SII sandbox: the SII's endpoints and message formats, served under `/_sii/`.

It verifies what it receives with dte.core (schema, signatures, TEDs, CAFs signed by the
sandbox's own key, totals) and answers with the SII's real codes, as the real SII behaves
(dte/sandbox/SII_BEHAVIOUR.md): processing takes a while, repeats are reported, the upload
endpoints refuse non-browser User-Agents. Nothing else in the project imports it: ops/urls.py
mounts it when SII_ENV=sandbox, and the client (dte.sii) talks to it over HTTP like it talks to
the real SII.

Endpoints (relative to /_sii):
  DTEWS/CrSeed.jws, GetTokenFromSeed.jws, QueryEstUp.jws, QueryEstDte.jws   SOAP (?WSDL)
  cgi_dte/UPL/DTEUpload                                    EnvioDTE and libro (IECV, guías) upload
  recursos/v1/boleta.electronica.{semilla,token,envio}, .envio/{rut}-{dv}-{trackid},
  recursos/v1/boleta.electronica/{rut}-{dv}-{tipo}-{folio}/estado            boletas REST
  WSREGISTRORECLAMODTE/registroreclamodteservice          RCV aceptación o reclamo (SOAP, ?wsdl)
  _control/faults, _control/reset, _control/process, _control/reception      test knobs

Settings (or environment variables), read at call time (dte.sandbox.conf):
  SII_SANDBOX_PROCESSING_SECONDS (0)  an envelope's processing time: in-progress states and FAU
                                      until then
  SII_SANDBOX_POLLS_BEFORE_DONE (1)   status queries answered in progress before the verdict
  SII_SANDBOX_REPEAT_TRACKID (true)   DTEUpload STATUS 99 carries the original's TRACKID
  SII_SANDBOX_TIMEOUT_SLEEP (3.0 s), SII_SANDBOX_SLOW_SLEEP (1.0 s)   "timeout"/"slow" faults
  SII_SANDBOX_SEED_TTL (120 s), SII_SANDBOX_TOKEN_TTL (3600 s)
Commands: `manage.py sandbox_fault` (simulated failures, see dte.sandbox.faults),
`manage.py sandbox_caf` (test CAFs).
"""
