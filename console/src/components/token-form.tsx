import { saveToken } from "../token.js";

/**
 * The bearer token, entered once per tab: kept in sessionStorage (token.ts)
 * and sent as the Authorization header, never in a URL. A server without
 * tokens needs none.
 */
export function TokenForm(props: { token: string; onChange: (token: string) => void }) {
  if (props.token !== "") {
    return (
      <div class="token">
        <span>Token set for this tab.</span>
        <button
          type="button"
          onClick={() => {
            saveToken("");
            props.onChange("");
          }}
        >
          Forget token
        </button>
      </div>
    );
  }
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const token = String(form.get("token") ?? "").trim();
    saveToken(token);
    props.onChange(token);
  };
  return (
    <form class="token" onSubmit={onSubmit}>
      <label>
        Bearer token
        <input name="token" type="password" autoComplete="off" required />
      </label>
      <button type="submit">Use token</button>
    </form>
  );
}
