import { saveToken } from "../token.js";

/**
 * The bearer token, asked once per tab before any call: kept in
 * sessionStorage (token.ts) and sent as the Authorization header, never in
 * a URL. A server without tokens needs none ("Continue without a token").
 */
export function TokenForm(props: {
  token: string | null;
  onChange: (token: string | null) => void;
}) {
  const use = (token: string | null) => {
    saveToken(token);
    props.onChange(token);
  };
  if (props.token !== null) {
    return (
      <div class="token">
        <span>{props.token === "" ? "No token in use." : "Token set for this tab."}</span>
        <button type="button" onClick={() => use(null)}>
          {props.token === "" ? "Enter a token" : "Forget token"}
        </button>
      </div>
    );
  }
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    use(String(form.get("token") ?? "").trim());
  };
  return (
    <form class="token" onSubmit={onSubmit}>
      <label>
        Bearer token
        <input name="token" type="password" autoComplete="off" required />
      </label>
      <button type="submit">Use token</button>
      <button type="button" class="secondary" onClick={() => use("")}>
        Continue without a token
      </button>
    </form>
  );
}
