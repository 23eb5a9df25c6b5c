<#-- twostep: keycloak.v2's login-recovery-authn-code-input.ftl plus an explanation of WHICH code to
     enter: Keycloak accepts the backup codes strictly in their numbered order ("code #N"). -->
<#import "template.ftl" as layout>
<#import "field.ftl" as field>
<#import "buttons.ftl" as buttons>
<#assign twostepCodeNumber = recoveryAuthnCodesInputBean.codeNumber?c>
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('recoveryCodeInput'); section>
<!-- template: login-recovery-authn-code-input.ftl (twostep) -->
    <#if section = "header">
        ${msg("auth-recovery-code-header")}
    <#elseif section = "form">
        <div id="twostep-recovery-intro" class="twostep-intro">
            <p id="twostep-recovery-which">${msg("twostepRecoveryWhichCode", twostepCodeNumber)}</p>
            <p id="twostep-recovery-why">${msg("twostepRecoveryWhy", twostepCodeNumber)}</p>
        </div>
        <form id="kc-recovery-code-login-form" class="${properties.kcFormClass!}" onsubmit="login.disabled = true; return true;" action="${url.loginAction}" method="post">
            <@field.input name="recoveryCodeInput" label=msg("auth-recovery-code-prompt", twostepCodeNumber) autofocus=true />
            <p class="${properties.kcInputHelperTextItemTextClass!}">${msg("twostepRecoveryFormat")}</p>

            <@buttons.loginButton />
        </form>

        <section id="twostep-recovery-help" class="twostep-help" aria-labelledby="twostep-recovery-help-title">
            <h2 id="twostep-recovery-help-title">${msg("twostepRecoveryNoCodesTitle")}</h2>
            <p>${msg("twostepRecoveryNoCodes")}</p>
        </section>
    </#if>
</@layout.registrationLayout>
