-- wrk: POST the AdmissionReview of the file $WEBHOOK_REVIEW to the URL given to wrk (/mutate).
local file = assert(io.open(os.getenv("WEBHOOK_REVIEW"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
